from django.apps import AppConfig


class CcpConfig(AppConfig):
    name = "ccp"
    verbose_name = "Central computing platform (/CCP): engines, workloads, pods"
