# Shared by scripts/dev and scripts/test: the project's virtualenv and a running RabbitMQ.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e '.[test]' 2>&1 \
  | { grep -v "^WARNING: Location" || true; }

# Debian packages: Tesseract for OCR (run time), espeak-ng and sox make test speech.
missing=""
for tool in tesseract:tesseract-ocr espeak-ng:espeak-ng sox:sox; do
  command -v "${tool%%:*}" >/dev/null || missing="$missing ${tool#*:}"
done
[ -e /usr/share/tesseract-ocr/5/tessdata/eng.traineddata ] || missing="$missing tesseract-ocr-eng"
if [ -n "$missing" ]; then
  echo "installing Debian packages:$missing" >&2
  sudo=""; [ "$(id -u)" = 0 ] || sudo=sudo
  $sudo apt-get install -y -q $missing >/dev/null \
    || { $sudo apt-get update -q >/dev/null && $sudo apt-get install -y -q $missing >/dev/null; }
fi

rabbitmq_answers() {
  .venv/bin/python - <<'PY'
import asyncio, os, sys
import aiormq
async def probe():
    try:
        c = await aiormq.connect(os.environ.get("RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672/"))
    except Exception:
        return False
    await c.close()
    return True
sys.exit(0 if asyncio.run(probe()) else 1)
PY
}

if [ -z "${RABBITMQ_URL:-}" ] && ! rabbitmq_answers; then
  echo "RabbitMQ is not answering on 127.0.0.1:5672; starting it (rabbitmq-server -detached)" >&2
  rabbitmq-server -detached || true
  for _ in $(seq 60); do rabbitmq_answers && break; sleep 1; done
fi
