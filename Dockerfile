# syntax=docker/dockerfile:1
# Two stages: the project and its dependencies are installed into a virtualenv in `build`
# (every dependency ships a manylinux wheel for CPython 3.11: no compiler needed); the
# runtime stage gets that virtualenv, the runtime Debian packages and a non-root user.

FROM python:3.11-slim-bookworm AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
# dependencies first, so a code change does not reinstall them
COPY pyproject.toml README.md ./
RUN mkdir core && touch core/__init__.py \
    && pip install . \
    && pip uninstall --yes integration-processors
COPY . .
RUN pip install --no-deps .

FROM python:3.11-slim-bookworm AS runtime
# Tesseract for local OCR; transcription needs no FFmpeg package (PyAV's wheel bundles
# the FFmpeg libraries faster-whisper decodes with).
RUN apt-get update \
    && apt-get install -y --no-install-recommends tesseract-ocr tesseract-ocr-eng \
    && rm -rf /var/lib/apt/lists/*
RUN groupadd --system --gid 10001 processors \
    && useradd --system --uid 10001 --gid processors --no-create-home \
       --home-dir /nonexistent --shell /usr/sbin/nologin processors \
    && mkdir /data && chown processors:processors /data
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    OMP_THREAD_LIMIT=1 \
    DATA_DIR=/data \
    PORT=6066
WORKDIR /data
USER 10001:10001
EXPOSE 6066
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-m", "processors.probe"]
CMD ["integration-processors", "worker"]
