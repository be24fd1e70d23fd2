"""Settings for the facility. Every knob is an environment variable; see
`.env.example` and the README's configuration table. Defaults run the whole
facility on one machine: SQLite, the django-q2 ORM broker, the local runtime.
"""

from __future__ import annotations

import os
from pathlib import Path

import dj_database_url

from facility.conf import (
    env_bool,
    env_choice,
    env_float,
    env_int,
    env_json,
    env_list,
    env_path,
    env_size,
    env_str,
)

BASE_DIR = Path(__file__).resolve().parent.parent
DATA_DIR = env_path("FACILITY_DATA_DIR", BASE_DIR / "var")

SECRET_KEY = env_str("FACILITY_SECRET_KEY", "dev-only-insecure-key-change-me")
DEBUG = env_bool("FACILITY_DEBUG", False)
ALLOWED_HOSTS = env_list("FACILITY_ALLOWED_HOSTS", "*")
CSRF_TRUSTED_ORIGINS = env_list("FACILITY_CSRF_TRUSTED_ORIGINS", "")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_q",
    "simple_history",
    "facility",
    "algorithms",
    "compute",
    "services",
    "tasks",
    "ccp",
    "gb28181",
]

MIDDLEWARE = [
    "facility.api.middleware.RequestIDMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "facility.audit_log.AuditMiddleware",
    "facility.metrics.RequestMetricsMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "simple_history.middleware.HistoryRequestMiddleware",
]

ROOT_URLCONF = "facility.urls"
# The standard's URIs carry no trailing slash; never redirect them.
APPEND_SLASH = False

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

WSGI_APPLICATION = "facility.wsgi.application"

DATABASES = {
    "default": dj_database_url.parse(
        env_str("DATABASE_URL", f"sqlite:///{DATA_DIR / 'facility.sqlite3'}"),
        conn_max_age=env_int("FACILITY_DB_CONN_MAX_AGE", 60, minimum=0),
        # A kept connection may have died with a database restart; ping it
        # before the first query of a request or job instead of answering 500.
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    Path(DATABASES["default"]["NAME"]).parent.mkdir(parents=True, exist_ok=True)
    # Web server and workers share one SQLite file: wait for locks instead of
    # failing, and use WAL so readers never block the writer.
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 30,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    DATABASES["default"]["CONN_MAX_AGE"] = 0

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# API messages, the admin and the dashboard follow the request's
# Accept-Language (or the browser's language); this is the default.
LANGUAGE_CODE = env_str("FACILITY_LANGUAGE", "en")
LANGUAGES = [("en", "English"), ("zh-hans", "简体中文")]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = env_str("FACILITY_TIME_ZONE", "Asia/Shanghai")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = DATA_DIR / "static"
STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # whitenoise expects it, even when empty
# The admin and Swagger UI assets are served by the facility itself (no CDN,
# no separate web server needed), straight from the installed apps.
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = DEBUG

# Request bodies of the standard are small JSON documents; anything bigger is
# refused with 413 before it is parsed.
DATA_UPLOAD_MAX_MEMORY_SIZE = env_size("FACILITY_MAX_REQUEST_BYTES", "1M")

REST_FRAMEWORK = {
    "DEFAULT_RENDERER_CLASSES": ["facility.api.envelope.EnvelopeRenderer"],
    "DEFAULT_PARSER_CLASSES": [
        "facility.api.parsers.TolerantJSONParser",
        "facility.api.parsers.PlainTextJSONParser",
    ],
    "DEFAULT_AUTHENTICATION_CLASSES": ["facility.api.auth.PlatformTokenAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["facility.api.permissions.PlatformScopePermission"],
    "DEFAULT_THROTTLE_CLASSES": ["facility.api.throttling.ClientRateThrottle"],
    "EXCEPTION_HANDLER": "facility.api.errors.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "facility.api.schema.ContractAutoSchema",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Central video-analysis facility (T/BAX 0006.4-2023)",
    "DESCRIPTION": (
        "The /CAD, /CCP and /CAP interfaces of T/BAX 0006.4-2023. Every answer is the "
        "standard's envelope {Code, Message, Data, RequestID}. Send the platform "
        "credential as `Authorization: Bearer <token>` (or `X-API-Key`)."
    ),
    "VERSION": "0.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {},
    "SCHEMA_PATH_PREFIX": r"/(CAD|CCP|CAP)",
    "POSTPROCESSING_HOOKS": [],
}

# --- the shared cache (Redis) -------------------------------------------------
# Django's cache holds the per-client rate limit counters (facility/api/
# throttling.py) and django-q2's cluster statistics. Without Redis it is a
# local-memory cache per process: each gunicorn worker counts on its own.
# With FACILITY_REDIS_URL every process shares one. Background jobs keep the
# ORM broker either way (docs/deployment.md says why).
REDIS_URL = env_str("FACILITY_REDIS_URL", "")
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": env_str("FACILITY_REDIS_KEY_PREFIX", "facility"),
            # a dead Redis must fail a request (or /readyz) in seconds, not hang it
            "OPTIONS": {
                "socket_connect_timeout": env_float("FACILITY_REDIS_TIMEOUT_S", 2, minimum=0.1),
                "socket_timeout": env_float("FACILITY_REDIS_TIMEOUT_S", 2, minimum=0.1),
            },
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# --- background work (django-q2) -------------------------------------------
FACILITY_QUEUE_MODE = env_str("FACILITY_QUEUE_MODE", "q2")  # q2 | sync | manual
Q_CLUSTER = {
    "name": "facility",
    "orm": "default",
    "workers": env_int("FACILITY_WORKERS", 2, minimum=1),
    "timeout": env_int("FACILITY_JOB_TIMEOUT_S", 6 * 3600, minimum=10),
    "retry": env_int("FACILITY_JOB_TIMEOUT_S", 6 * 3600, minimum=10) + 60,
    "max_attempts": 1,
    "ack_failures": True,
    "catch_up": False,
    "poll": env_float("FACILITY_QUEUE_POLL_S", 0.5, minimum=0.05),
    "save_limit": 1000,
    "label": "Background jobs",
}

# --- algorithm services ------------------------------------------------------
# Which runtime runs replicas: "auto" = artifact packages as local processes,
# image packages in Docker; or force "local" / "docker".
FACILITY_RUNTIME = env_str("FACILITY_RUNTIME", "auto")
ENGINE_PORT_RANGE = env_str("FACILITY_ENGINE_PORTS", "18750-18999")
ENGINE_START_TIMEOUT_S = env_float("FACILITY_ENGINE_START_TIMEOUT_S", 30, minimum=1)
ENGINE_HEALTH_TIMEOUT_S = env_float("FACILITY_ENGINE_HEALTH_TIMEOUT_S", 2, minimum=0.1)
# The interpreter a local replica's bare `python3`/`python` command runs with
# (empty: the facility's own, which has the engine dependencies)
ENGINE_PYTHON = env_str("FACILITY_ENGINE_PYTHON", "")
REPLICA_MAX_RESTARTS_PER_10MIN = env_int("FACILITY_REPLICA_MAX_RESTARTS", 5, minimum=0)
RECONCILE_INTERVAL_S = env_float("FACILITY_RECONCILE_INTERVAL_S", 5, minimum=0.5)
# containers: read-only root filesystem (engines write to /tmp or declared mounts)
DOCKER_READ_ONLY_ROOT = env_bool("FACILITY_DOCKER_READ_ONLY_ROOT", True)
DOCKER_PIDS_LIMIT = env_int("FACILITY_DOCKER_PIDS_LIMIT", 1024, minimum=16)
# Where engines post their events (the facility's own intake)
PUBLIC_URL = env_str("FACILITY_PUBLIC_URL", "http://127.0.0.1:8000")

# --- the platform: registration and access ------------------------------------
PLATFORM_URL = env_str("FACILITY_PLATFORM_URL", "")  # empty: standalone
PLATFORM_REGISTER_PATH = env_str("FACILITY_PLATFORM_REGISTER_PATH", "/CAP/Register")
PLATFORM_HEARTBEAT_PATH = env_str("FACILITY_PLATFORM_HEARTBEAT_PATH", "/CAP/Heartbeat")
PLATFORM_HEARTBEAT_S = env_float("FACILITY_PLATFORM_HEARTBEAT_S", 30, minimum=1)
PLATFORM_TOKEN = env_str("FACILITY_PLATFORM_TOKEN", "")
PLATFORM_ROLE = env_str("FACILITY_PLATFORM_ROLE", "CAP")
FACILITY_ID = env_str("FACILITY_ID", "")
RATE_PER_MINUTE = env_int("FACILITY_RATE_PER_MINUTE", 6000, minimum=0)
# where the facility may connect to (downloads, deliveries): CIDR lists
DENY_NETWORKS = env_list("FACILITY_DENY_NETWORKS", "169.254.0.0/16,fe80::/10,0.0.0.0/32")
ALLOW_NETWORKS = env_list("FACILITY_ALLOW_NETWORKS", "")

# --- operating: health, metrics, logs ---------------------------------------------
HEALTH_WORKER_STALE_S = env_float("FACILITY_HEALTH_WORKER_STALE_S", 180, minimum=1)
HEALTH_LOOPS_STALE_S = env_float("FACILITY_HEALTH_LOOPS_STALE_S", 60, minimum=1)
METRICS_TOKEN = env_str("FACILITY_METRICS_TOKEN", "")
METRICS_ALLOW_NETWORKS = env_list("FACILITY_METRICS_ALLOW_NETWORKS", "127.0.0.0/8,::1/128")
LOG_FORMAT = env_str("FACILITY_LOG_FORMAT", "plain")  # plain | json

# --- analysis tasks and result delivery ------------------------------------------
RESULT_HMAC_SECRET = env_str("FACILITY_RESULT_HMAC_SECRET", "")
RESULT_TIMEOUT_S = env_float("FACILITY_RESULT_TIMEOUT_S", 5, minimum=0.1)
RESULT_MAX_ATTEMPTS = env_int("FACILITY_RESULT_MAX_ATTEMPTS", 50, minimum=1)
RESULT_BACKOFF_MAX_S = env_float("FACILITY_RESULT_BACKOFF_MAX_S", 300, minimum=0.1)
RESULT_BACKOFF_BASE_S = env_float("FACILITY_RESULT_BACKOFF_BASE_S", 1, minimum=0.01)
DELIVERY_INTERVAL_S = env_float("FACILITY_DELIVERY_INTERVAL_S", 0.5, minimum=0.05)

# --- algorithm packages -----------------------------------------------------
PACKAGE_STORE = env_path("FACILITY_PACKAGE_STORE", DATA_DIR / "packages")
PACKAGE_MAX_DOWNLOAD_BYTES = env_size("FACILITY_PACKAGE_MAX_BYTES", "20G")
PACKAGE_MAX_UNPACKED_BYTES = env_size("FACILITY_PACKAGE_MAX_UNPACKED_BYTES", "40G")
PACKAGE_MAX_MEMBERS = env_int("FACILITY_PACKAGE_MAX_MEMBERS", 100_000, minimum=1)
PACKAGE_MAX_MANIFEST_BYTES = env_size("FACILITY_PACKAGE_MAX_MANIFEST_BYTES", "256K")
DOWNLOAD_CONNECT_TIMEOUT_S = env_float("FACILITY_DOWNLOAD_CONNECT_TIMEOUT_S", 10, minimum=0.1)
DOWNLOAD_READ_TIMEOUT_S = env_float("FACILITY_DOWNLOAD_READ_TIMEOUT_S", 60, minimum=0.1)
DOWNLOAD_ATTEMPTS = env_int("FACILITY_DOWNLOAD_ATTEMPTS", 5, minimum=1)
DOWNLOAD_BACKOFF_S = env_float("FACILITY_DOWNLOAD_BACKOFF_S", 2, minimum=0)
DOWNLOAD_STALE_AFTER_S = env_int("FACILITY_DOWNLOAD_STALE_AFTER_S", 300, minimum=10)
DOWNLOAD_VERIFY_TLS = env_bool("FACILITY_DOWNLOAD_VERIFY_TLS", True)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_id": {"()": "facility.logs.RequestIDFilter"}},
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
        "json": {"()": "facility.logs.JsonFormatter"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "json" if LOG_FORMAT == "json" else "plain",
            "filters": ["request_id"],
        }
    },
    "root": {"handlers": ["console"], "level": env_str("FACILITY_LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}

# --- compute (clusters, nodes, resource samples; docs/compute.md) -------------
# The cluster the local machine joins on first start; the standard's example
# (表E.1) asks for "cluster-1", so that is the default.
FACILITY_CLUSTER_CODE = env_str("FACILITY_CLUSTER_CODE", "cluster-1")
FACILITY_CLUSTER_NAME = env_str("FACILITY_CLUSTER_NAME", "local cluster")
# DeviceID of /CAD/Status (表A.2, at most 20 characters); empty = the node's name
FACILITY_DEVICE_ID = env_str("FACILITY_DEVICE_ID", "")
# Filesystem whose size and use the local node reports as Disk
FACILITY_DISK_PATH = env_path("FACILITY_DISK_PATH", DATA_DIR)
FACILITY_SAMPLE_INTERVAL_S = env_float("FACILITY_SAMPLE_INTERVAL_S", 10, minimum=1)
# No sample for this long: the node is offline (IsOnline false, last values kept)
FACILITY_NODE_OFFLINE_AFTER_S = env_int("FACILITY_NODE_OFFLINE_AFTER_S", 60, minimum=5)
# Trend lists (…List) cover this window, averaged into at most this many points
FACILITY_TREND_WINDOW_S = env_int("FACILITY_TREND_WINDOW_S", 3600, minimum=60)
FACILITY_TREND_POINTS = env_int("FACILITY_TREND_POINTS", 60, minimum=1)
# Samples older than DOWNSAMPLE_AFTER are merged into BUCKET-wide averages;
# samples older than RETENTION are deleted.
FACILITY_SAMPLE_DOWNSAMPLE_AFTER_S = env_int(
    "FACILITY_SAMPLE_DOWNSAMPLE_AFTER_S", 86400, minimum=60
)
FACILITY_SAMPLE_DOWNSAMPLE_BUCKET_S = env_int("FACILITY_SAMPLE_DOWNSAMPLE_BUCKET_S", 300, minimum=1)
FACILITY_SAMPLE_RETENTION_S = env_int("FACILITY_SAMPLE_RETENTION_S", 30 * 86400, minimum=3600)
# Set false on machines where NVML must not be touched
FACILITY_NVML_ENABLED = env_bool("FACILITY_NVML_ENABLED", True)

# --- GA/T 1400 view library (视图库) output (docs/gat1400.md) -------------------
# When GAT1400_URL is set, the events of every task are also delivered to this
# view library (a Delivery with target "viid:settings"); a task's rule can name
# its own with a ResultReceiveUrl viid://user:pass@host:port/?DeviceID=<20 digits>.
GAT1400_URL = env_str("FACILITY_GAT1400_URL", "")  # e.g. http://10.1.2.3:8080, empty = off
GAT1400_USERNAME = env_str("FACILITY_GAT1400_USERNAME", "")
GAT1400_PASSWORD = env_str("FACILITY_GAT1400_PASSWORD", "")
# The facility's 20-digit DeviceID (User-Identify, and the first 20 digits of every ID it makes)
GAT1400_DEVICE_ID = env_str("FACILITY_GAT1400_DEVICE_ID", "")
GAT1400_KEEPALIVE_S = env_float("FACILITY_GAT1400_KEEPALIVE_S", 60, minimum=1)
GAT1400_TIMEOUT_S = env_float("FACILITY_GAT1400_TIMEOUT_S", 10, minimum=0.1)
# --- end GA/T 1400 --------------------------------------------------------------

# --- GA/T 1400 image input (docs/gat1400.md "Image input") -------------------
# A view library pushes pictures to POST /VIID/Images (or /VIID/SubscribeNotifications)
# with digest authentication as this user; empty = image input off (answered 503).
VIID_INTAKE_USERNAME = env_str("FACILITY_VIID_INTAKE_USERNAME", "")
VIID_INTAKE_PASSWORD = env_str("FACILITY_VIID_INTAKE_PASSWORD", "")
VIID_INTAKE_MAX_BYTES = env_size("FACILITY_VIID_INTAKE_MAX_BYTES", "32M")
# One engine call analysing one image; failed calls are retried (back-off as
# deliveries) this many times before the image is left failed
IMAGE_ANALYZE_TIMEOUT_S = env_float("FACILITY_IMAGE_ANALYZE_TIMEOUT_S", 30, minimum=1)
IMAGE_MAX_ATTEMPTS = env_int("FACILITY_IMAGE_MAX_ATTEMPTS", 10, minimum=1)
# --- end GA/T 1400 image input -------------------------------------------------

# --- central computing platform /CCP (docs/ccp.md, docs/kubernetes.md) --------
CCP_BACKEND = env_choice("FACILITY_CCP_BACKEND", "docker", ("docker", "kubernetes"))
# None: DATA_DIR/ccp, worked out when used (ccp/conf.py)
CCP_ENGINE_STORE: Path | None = (
    env_path("FACILITY_CCP_ENGINE_STORE", DATA_DIR / "ccp")
    if os.environ.get("FACILITY_CCP_ENGINE_STORE")
    else None
)
CCP_REGISTRY_AUTH = env_json("FACILITY_CCP_REGISTRY_AUTH", {}, dict)
CCP_PULL_REGISTRIES = env_list("FACILITY_CCP_PULL_REGISTRIES", "")
CCP_DOCKER_HOST_IP = env_str("FACILITY_CCP_DOCKER_HOST_IP", "127.0.0.1")
CCP_DOCKER_NODE_NAME = env_str("FACILITY_CCP_DOCKER_NODE_NAME", "")
CCP_DOCKER_XPU_DEVICES = env_json("FACILITY_CCP_DOCKER_XPU_DEVICES", {}, dict)
CCP_HEALTH_TIMEOUT_S = env_float("FACILITY_CCP_HEALTH_TIMEOUT_S", 1.0, minimum=0.1)
CCP_KUBE_CONFIG = env_str("FACILITY_CCP_KUBE_CONFIG", "")
CCP_KUBE_CONTEXT = env_str("FACILITY_CCP_KUBE_CONTEXT", "")
CCP_KUBE_XPU_RESOURCE = env_str("FACILITY_CCP_KUBE_XPU_RESOURCE", "nvidia.com/gpu")
CCP_KUBE_XPU_NODE_LABEL = env_str("FACILITY_CCP_KUBE_XPU_NODE_LABEL", "facility/xpu-type")
CCP_ENGINE_PORT = env_int("FACILITY_CCP_ENGINE_PORT", 8750, minimum=1)

# --- GB/T 28181 native camera input (SIP platform side; docs/gb28181.md) ------
# `manage.py run_gb28181` listens here for cameras' REGISTER/MESSAGE (UDP).
GB28181_SIP_HOST = env_str("FACILITY_GB28181_SIP_HOST", "127.0.0.1")
GB28181_SIP_PORT = env_int("FACILITY_GB28181_SIP_PORT", 15060, minimum=0)
# The platform's 20-digit SIP ID and its 10-digit SIP domain (digest realm)
GB28181_SIP_ID = env_str("FACILITY_GB28181_SIP_ID", "34020000002000000001")
GB28181_REALM = env_str("FACILITY_GB28181_REALM", "3402000000")
# The password every device registers with (digest MD5); empty = refuse all devices
GB28181_PASSWORD = env_str("FACILITY_GB28181_PASSWORD", "")
# No keepalive for this long: the device is offline (the standard's 60 s × 3)
GB28181_KEEPALIVE_TIMEOUT_S = env_float("FACILITY_GB28181_KEEPALIVE_TIMEOUT_S", 180, minimum=0.1)
# The address put in INVITE SDP for RTP (empty = GB28181_SIP_HOST)
GB28181_MEDIA_HOST = env_str("FACILITY_GB28181_MEDIA_HOST", "")
# run_gb28181 relays channels to engines over HTTP here; tasks' gb28181:// URLs
# reach engines as http://<host>:<port>/gb28181/<DeviceID>/<ChannelID>
GB28181_RELAY_HOST = env_str("FACILITY_GB28181_RELAY_HOST", "127.0.0.1")
GB28181_RELAY_PORT = env_int("FACILITY_GB28181_RELAY_PORT", 15070, minimum=1)
# --- end GB/T 28181 --------------------------------------------------------------
