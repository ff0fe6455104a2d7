FROM python:3.11-slim
WORKDIR /app
RUN apt-get update && apt-get install -y --no-install-recommends tesseract-ocr tesseract-ocr-eng \
    && rm -rf /var/lib/apt/lists/*
COPY pyproject.toml README.md ./
COPY streams streams
COPY agents agents
COPY tables tables
COPY bridge bridge
COPY shards shards
COPY mappings mappings
COPY web web
COPY processors processors
COPY normalisers normalisers
COPY linking linking
COPY blobs blobs
COPY documents documents
COPY speech speech
RUN pip install --no-cache-dir .
ENV DATA_DIR=/data PORT=6066
EXPOSE 6066
HEALTHCHECK CMD python -c "import urllib.request,os; urllib.request.urlopen(f'http://127.0.0.1:{os.environ[\"PORT\"]}/health')"
CMD ["integration-processors", "worker"]
