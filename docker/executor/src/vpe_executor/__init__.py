"""The vpe executor: runs registered pipeline tasks on behalf of Airflow over gRPC.

Kept import-light (stdlib only) because pipeline environments also import
`vpe_executor.platform_config` without having grpc installed.
"""
