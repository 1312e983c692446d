# Recograph API image: non-root, no compiler in the final stage.
FROM python:3.12-slim AS build
WORKDIR /src
COPY pyproject.toml README.md schema.graphql ./
COPY gql gql
COPY engines engines
COPY plugins plugins
COPY storage storage
RUN python -m venv /opt/venv \
 && /opt/venv/bin/pip install --no-cache-dir . \
 && RECOGRAPH_GRAPHIQL_ASSETS_DIR=/opt/graphiql /opt/venv/bin/python -m gql.server.graphiql

FROM python:3.12-slim
RUN useradd --create-home --uid 10001 recograph
COPY --from=build /opt/venv /opt/venv
COPY --from=build /opt/graphiql /opt/graphiql
ENV PATH=/opt/venv/bin:$PATH \
    RECOGRAPH_GRAPHIQL_ASSETS_DIR=/opt/graphiql \
    RECOGRAPH_HOST=0.0.0.0 \
    OPENBLAS_NUM_THREADS=1 \
    PYTHONUNBUFFERED=1
USER recograph
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/health', timeout=2)"
CMD ["recograph", "serve"]
