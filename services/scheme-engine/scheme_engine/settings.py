from sellthrough_runtime.settings import ServiceSettings


class SchemeEngineSettings(ServiceSettings):
    http_port: int = 8003
