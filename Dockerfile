# drill in a container: drill, kind, kubectl and the Docker CLI (kind drives Docker through
# it) on Debian bookworm-slim with git, ssh and tini, running as uid 10001.
#
#   docker build -t gitops-drill .        online: compiles drill, downloads kind and kubectl
#                                         (needs BuildKit, Docker 23+'s default builder)
#   ./hack/testbed drill-image [BINARY]   offline (the test bed): target `from-dist`, a dist/
#                                         folder of binaries built here, no registry used
#
# Run it beside the host's Docker, on the host's network (kind's kubeconfig and drill's
# served repo use host addresses), with the socket's group and a writable report folder:
#
#   docker run --rm --network host --group-add "$(stat -c %g /var/run/docker.sock)" \
#     -v /var/run/docker.sock:/var/run/docker.sock -v "$PWD:/work" -w /work \
#     gitops-drill run scenarios/nightly.yaml --report-dir reports
#
# drill's exit code is the container's: 0 pass, 1 an assertion failed, 2 an error.
ARG BASE_IMAGE=docker.io/library/debian:bookworm-slim
ARG RUST_IMAGE=docker.io/library/rust:1.95-slim-bookworm

# What every variant runs on. A base that already has git (the test bed's) installs nothing.
# The checkout is bind-mounted and owned by someone else: drill trusts the one its scenario
# names on its own; safe.directory here is for git run by hand in the container.
FROM ${BASE_IMAGE} AS runtime
RUN if ! command -v git >/dev/null || ! command -v tini >/dev/null; then \
      apt-get update && apt-get install -y --no-install-recommends \
        git openssh-client ca-certificates tini \
      && rm -rf /var/lib/apt/lists/*; \
    fi \
    && git config --system --add safe.directory '*' \
    && useradd --uid 10001 --create-home --home-dir /home/drill drill \
    && mkdir -p /work && chown drill /work
ENV HOME=/home/drill
WORKDIR /work
USER 10001
ENTRYPOINT ["tini", "--", "drill"]
CMD ["--help"]

# Offline: the binaries come from the build context's dist/ (hack/testbed.d/drill-image.sh).
FROM runtime AS from-dist
COPY dist/ /usr/local/bin/

# Online: drill compiled from this checkout, at the versions Cargo.lock pins.
FROM ${RUST_IMAGE} AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin drill && cp target/release/drill /drill

# Online: kind, kubectl and the Docker CLI, each checked against its release's checksum
# (Docker publishes none for its static CLI bundle: pin DOCKER_SHA256 to check it).
FROM ${BASE_IMAGE} AS tools
ARG KIND_VERSION=v0.31.0
ARG KUBECTL_VERSION=v1.34.4
ARG DOCKER_VERSION=28.2.2
ARG DOCKER_SHA256=
RUN apt-get update && apt-get install -y --no-install-recommends curl ca-certificates \
    && cd /tmp \
    && curl -fsSLo kind "https://kind.sigs.k8s.io/dl/${KIND_VERSION}/kind-linux-amd64" \
    && echo "$(curl -fsSL "https://kind.sigs.k8s.io/dl/${KIND_VERSION}/kind-linux-amd64.sha256sum" | cut -d' ' -f1)  kind" | sha256sum -c - \
    && curl -fsSLo kubectl "https://dl.k8s.io/release/${KUBECTL_VERSION}/bin/linux/amd64/kubectl" \
    && echo "$(curl -fsSL "https://dl.k8s.io/release/${KUBECTL_VERSION}/bin/linux/amd64/kubectl.sha256")  kubectl" | sha256sum -c - \
    && curl -fsSLo docker.tgz "https://download.docker.com/linux/static/stable/x86_64/docker-${DOCKER_VERSION}.tgz" \
    && if [ -n "$DOCKER_SHA256" ]; then echo "$DOCKER_SHA256  docker.tgz" | sha256sum -c -; fi \
    && tar -xzf docker.tgz docker/docker \
    && mkdir /out && install -m 0755 kind kubectl docker/docker /out/

# The default target: the online image.
FROM runtime
COPY --from=build /drill /usr/local/bin/drill
COPY --from=tools /out/ /usr/local/bin/
