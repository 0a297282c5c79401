# CI stand-in for the official postgres image, which no public registry can serve on the CI machines: Debian
# bookworm's PostgreSQL (15) on the root filesystem .ci/containers.sh makes with debootstrap, with an entrypoint
# that honours what docker-compose.yml uses of the official one (POSTGRES_USER, POSTGRES_PASSWORD, POSTGRES_DB, the
# data in /var/lib/postgresql/data, password logins over TCP, pg_isready on the PATH).
ARG DEBIAN_IMAGE=tessera-ci/debian:bookworm
FROM ${DEBIAN_IMAGE}
# Debian's package would create and start a cluster of its own; the entrypoint makes the one the image uses.
RUN mkdir -p /etc/postgresql-common/createcluster.d \
  && echo 'create_main_cluster = false' > /etc/postgresql-common/createcluster.d/tessera-ci.conf \
  && apt-get update -qq \
  && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql-15 > /dev/null \
  && apt-get clean \
  && rm -rf /var/lib/apt/lists/* \
  && mkdir -p /var/lib/postgresql/data /var/run/postgresql \
  && chown -R postgres:postgres /var/lib/postgresql /var/run/postgresql
ENV PATH=/usr/lib/postgresql/15/bin:$PATH \
    PGDATA=/var/lib/postgresql/data
COPY --chmod=0755 postgres-entrypoint.sh /usr/local/bin/docker-entrypoint.sh
VOLUME ["/var/lib/postgresql/data"]
EXPOSE 5432
STOPSIGNAL SIGINT
ENTRYPOINT ["docker-entrypoint.sh"]
CMD ["postgres"]
