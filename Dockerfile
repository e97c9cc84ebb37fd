# The dashboard image: web (gunicorn), Celery worker and beat, and the SparkBot sandbox
# all run from it (see docker-compose.yml). Static files are collected at build time and
# served by whitenoise.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

COPY requirements.txt ./
RUN pip install -r requirements.txt

# Only what the app needs: never .venv, var/, .env or .git from the build context.
COPY manage.py ./
COPY sparkbot_dash/ sparkbot_dash/
COPY queues/ queues/
COPY sparkbot_sandbox/ sparkbot_sandbox/
COPY templates/ templates/
COPY static/ static/

# Throwaway keys, only so that settings load for collectstatic; not kept in the image (without
# AUDIT_CHAIN_KEY settings would write one under var/, and every container would share it).
ARG COLLECTSTATIC_SECRET_KEY=collectstatic-only-not-a-secret
RUN SECRET_KEY="$COLLECTSTATIC_SECRET_KEY" AUDIT_CHAIN_KEY="$COLLECTSTATIC_SECRET_KEY-audit-chain" DEBUG=false \
    python manage.py collectstatic --noinput

RUN useradd --system --uid 1000 --user-group --home-dir /app --no-create-home app \
    && chown -R app:app /app/var
USER app

EXPOSE 8000
CMD ["gunicorn", "sparkbot_dash.wsgi:application", "--bind", "0.0.0.0:8000", "--workers", "3"]
