"""Azure Functions entry point: creates the app and registers the blueprints. Nothing else."""

import azure.functions as func

from shared.entrypoints import ribbon_api, sync_queues, sync_timers, timeline_api

app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)
for blueprint in (sync_timers.bp, sync_queues.bp, ribbon_api.bp, timeline_api.bp):
    app.register_functions(blueprint)
