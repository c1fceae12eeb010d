"""compare page (placeholder until built)."""

import streamlit as st

st.title("Compare")
