# ComputeLoop: one image for the portal (the default command) and every job (`python -m core …`).
#
#   docker build -t computeloop:0.1.0 .
#   docker run -p 8501:8501 -e COMPUTELOOP_AUTH=oidc ... computeloop:0.1.0            # the portal
#   docker run ... computeloop:0.1.0 python -m core jobs daily                          # a job
#
# Read-only root file system: everything the processes write (SQLite default, offline samples,
# temporary files, caches: fonts, numba's compiled rollup loop) is under the one volume
# /var/lib/computeloop. No demo data (no var/, no
# seeded database) and no secret is in the image: settings come from the environment, the sign-in
# secrets from a mounted secrets.toml (STREAMLIT_SECRETS_FILES). Operator's guide: docs/deploy.md.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# --- build: the virtualenv with the pinned requirements, the code compiled to bytecode -----------
FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
COPY requirements.txt /tmp/requirements.txt
RUN python -m venv /opt/venv \
    && /opt/venv/bin/pip install --no-cache-dir -r /tmp/requirements.txt
WORKDIR /app
COPY app.py alembic.ini ./
COPY .streamlit/config.toml .streamlit/config.toml
COPY app_pages app_pages
COPY core core
COPY data data
COPY migrations migrations
COPY ui ui
# unchecked-hash: the .pyc files stay valid whatever the files' times become when the layers are copied
RUN /opt/venv/bin/python -m compileall -q --invalidation-mode unchecked-hash /app /opt/venv

# --- runtime ---------------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS runtime
# Pango and HarfBuzz for WeasyPrint (PDF exports), a CJK font for Chinese reports. Versions follow the
# base image's Debian release (pin the base image by digest in your registry to freeze them).
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0 fonts-wqy-microhei \
    && rm -rf /var/lib/apt/lists/*
RUN groupadd --system --gid 10001 computeloop \
    && useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/computeloop --no-create-home \
       --shell /usr/sbin/nologin computeloop \
    && install -d -o 10001 -g 10001 -m 0750 /var/lib/computeloop
COPY --from=build /opt/venv /opt/venv
COPY --from=build /app /app
# DL3064 flags STREAMLIT_SECRETS_FILES for its name: its value is where the secrets file is mounted, not a secret.
# hadolint ignore=DL3064
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONPATH=/app \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/var/lib/computeloop \
    TMPDIR=/var/lib/computeloop \
    XDG_CACHE_HOME=/var/lib/computeloop/.cache \
    NUMBA_CACHE_DIR=/var/lib/computeloop/.cache/numba \
    STREAMLIT_SERVER_FILE_WATCHER_TYPE=none \
    STREAMLIT_SECRETS_FILES=/etc/computeloop/streamlit/secrets.toml \
    COMPUTELOOP_DATABASE_URL=sqlite:////var/lib/computeloop/computeloop.db \
    COMPUTELOOP_METRICS_DIR=/var/lib/computeloop/metrics/samples
WORKDIR /app
USER 10001:10001
VOLUME ["/var/lib/computeloop"]
EXPOSE 8501
HEALTHCHECK --interval=30s --timeout=5s --start-period=40s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8501/_stcore/health', timeout=4)"]
CMD ["streamlit", "run", "app.py", "--server.address=0.0.0.0", "--server.port=8501", "--server.headless=true"]
