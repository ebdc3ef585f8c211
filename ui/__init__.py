"""Streamlit-side helpers shared by app.py and the pages: translation, identity, navigation,
error display and cached reads. Only this package and the pages import streamlit."""
