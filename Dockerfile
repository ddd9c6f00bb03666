FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    CARDCORE_HOST=0.0.0.0 \
    CARDCORE_DATA_DIR=/var/lib/cardcore

WORKDIR /app
RUN useradd --system --create-home --home-dir /var/lib/cardcore cardcore

# Dependencies first, so a code change does not reinstall them.
COPY pyproject.toml README.md ./
COPY src ./src
RUN pip install -e .
COPY alembic.ini ./
COPY migrations ./migrations

USER cardcore
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
    CMD python -c "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/health/ready').status != 200)"
# Migrations run as their own step (see docker-compose.yml), so several API containers never race.
CMD ["cardcore", "serve", "--no-migrate"]
