"""The Streamlit dashboard: `app.py` (navigation), `views/` (one file per page) and the widgets and
charts the pages share (`ui`, `charts`, `explain_charts`, `jobs_view`, `train_form`, `error_view` ...).

UI only: anything worth a unit test lives in `core`. May import: `core` (never `core.cli`), Streamlit,
Plotly and pandas; never torch, transformers, captum or peft (checked by the import contracts and by
a page-browsing test that looks at `sys.modules`).
"""
