"""The Prefect flows. Imported first in every flow run process: one that `opsaudit serve` started
ends with it (server.die_with_server), so a killed serve leaves no run behind."""

from opsaudit.flows.server import die_with_server

die_with_server()
