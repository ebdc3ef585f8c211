"""ComputeLoop core: domain, services and adapters. Never imports streamlit."""
