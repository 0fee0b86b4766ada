# The portal as a container; docker-compose.yml runs it beside PostGIS.
# pyogrio, pyproj and shapely wheels bundle GDAL, PROJ and GEOS, so no system GDAL is needed.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
COPY pyproject.toml README.md ./
COPY portal ./portal
RUN pip install . \
    && useradd --system --uid 10001 --user-group --home-dir /app --no-create-home portal \
    && mkdir -p /data \
    && chown portal:portal /data

USER portal
ENV PORTAL_DATA_DIR=/data
EXPOSE 8000

HEALTHCHECK --interval=15s --timeout=10s --start-period=20s --retries=5 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=5)"]

CMD ["portal", "serve", "--host", "0.0.0.0", "--port", "8000"]
