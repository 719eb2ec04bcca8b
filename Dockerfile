# grantbot: `grantbot serve` on port 3000 as a non-root user.
#
#   docker build -t grantbot:0.1.0 .
#   docker run --rm -p 3000:3000 --env-file grantbot.env \
#     -v "$PWD/policies.yaml:/etc/grantbot/policies.yaml:ro" grantbot:0.1.0
#
# Other commands run the same image: `docker run ... grantbot:0.1.0 audit verify`, or
# `kubectl exec deploy/grantbot -- grantbot audit verify`.
FROM python:3.11-slim

# ssh-keygen signs SSH certificates and keeps the KRL (the ssh_cert provider).
RUN apt-get update \
    && apt-get install -y --no-install-recommends openssh-client \
    && rm -rf /var/lib/apt/lists/*

# A fixed, numeric, non-root user: Kubernetes' runAsNonRoot can verify it.
RUN groupadd --system --gid 10001 grantbot \
    && useradd --system --uid 10001 --gid 10001 --no-create-home \
       --home-dir /nonexistent --shell /usr/sbin/nologin grantbot

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /src
COPY pyproject.toml README.md ./
COPY bot ./bot
RUN pip install . && rm -rf /src

# The policy is mounted here (a ConfigMap in Kubernetes); the bot reloads it when it changes.
ENV GRANTBOT_POLICY=/etc/grantbot/policies.yaml \
    GRANTBOT_HOST=0.0.0.0 \
    GRANTBOT_PORT=3000 \
    GRANTBOT_DATA_DIR=/tmp/grantbot

WORKDIR /tmp
USER 10001:10001
EXPOSE 3000
HEALTHCHECK --interval=30s --timeout=3s --start-period=30s \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:3000/healthz', timeout=2)"]
ENTRYPOINT ["grantbot"]
CMD ["serve"]
