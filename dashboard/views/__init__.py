"""The dashboard's pages, one file each (home, data, train, runs, compare, predict, explain), run by
Streamlit's navigation in `dashboard/app.py`. A page holds layout and widgets only.
May import: `core` and the shared `dashboard` modules; never another page.
"""
