"""One OpenShift Docker build through ``playbooks/build.yml``: plan, control-side steps, run.

- :mod:`.plan` turns a Build (JSON as the API serves it) plus its secrets into what the
  playbook needs: tenant data (marked unsafe by the runner), secret files, trusted settings;
  every tenant string that reaches a program is checked against a strict pattern first.
- :mod:`.steps` is the internal command the roles run on the control side
  (``python -m securebuild.pipeline.steps STEP FILE``): it drives the VM's helper over SSH and
  the VM's dockerd over mutual TLS, printing each output line as it is produced.
- :mod:`.execute` runs the playbook through :mod:`securebuild.runner` for ``securebuild run``
  (and later the daemon).
"""
