"""The Streamlit dashboard (UI only; all work happens in `core`)."""
