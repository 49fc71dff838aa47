# One image for every function; FUNCTION_SOURCE selects which one runs (Knative and OpenFaaS alike).
#   docker build -t dvci/functions:0.1.0 .
#   docker build --build-arg EXTRAS=ses,signing -t dvci/functions-heavy:0.1.0 .   (functions that need them)
# The base image is pinned by version; pin it by digest in your registry mirror (python:3.11.10-slim@sha256:...).
ARG PYTHON_IMAGE=python:3.11.10-slim-bookworm

# checkov:skip=CKV_DOCKER_7: the base image is the ARG above, pinned to a version (checkov cannot resolve ARGs)
# checkov:skip=CKV_DOCKER_2: Kubernetes ignores HEALTHCHECK; Knative probes /health/readiness and /health/liveness
FROM ${PYTHON_IMAGE} AS build
ARG EXTRAS=""
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN apt-get update && apt-get install -y --no-install-recommends gcc libc6-dev fonts-dejavu-core \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pyproject.toml constraints.txt README.md ./
COPY shared ./shared
COPY functions ./functions
COPY sandbox ./sandbox
COPY dvci ./dvci
COPY console ./console
RUN python -m venv /opt/venv \
 && /opt/venv/bin/pip install -c constraints.txt ".${EXTRAS:+[$EXTRAS]}"

FROM ${PYTHON_IMAGE}
# no compilers, no pip cache, no sources beyond the functions: just the venv and the code
COPY --from=build /opt/venv /opt/venv
WORKDIR /app
COPY functions ./functions
# fonts with every Vietnamese glyph (postal labels, visible signatures), installed in the build stage; the PKCS#11
# module of a hardware HSM is mounted by the production overlay (SoftHSM2 is for dev and tests only)
COPY --from=build /usr/share/fonts/truetype/dejavu /usr/share/fonts/truetype/dejavu
RUN useradd --uid 10001 --no-create-home --shell /usr/sbin/nologin dvci
USER 10001
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PORT=8080 \
    WORKERS=1 \
    FUNCTION_USE_ASGI=1 \
    FUNCTION_SIGNATURE_TYPE=http \
    FUNCTION_TARGET=handle \
    FUNCTION_SOURCE=functions/send_sms/main.py
EXPOSE 8080
# The production server `make bench` measures: functions-framework -> gunicorn + uvicorn worker, WORKERS
# workers, on $PORT (functions-framework reads PORT, FUNCTION_TARGET, FUNCTION_SOURCE, FUNCTION_USE_ASGI).
CMD ["functions-framework"]
