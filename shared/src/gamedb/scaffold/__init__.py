"""Writing a service: the files of `services/<name>/` (`files`) and `gamedb new-service`, which
writes them, registers the service and generates its first revision (`new_service`).
"""
