"""The console: a web dashboard at `/ui` for savings, usage, health, compliance and keys (docs/console.md).

    owstack.ui.config     the `ui:` section
    owstack.ui.mount      puts the console on the gateway's route table (and `owstack console` serves it alone)
    owstack.ui.console    Console: the ASGI app and service, its page table and its one thread for the database
    owstack.ui.web        requests and responses (query, form, cookies; HTML, CSV, redirects), the CSP
    owstack.ui.session    signed cookie sessions and CSRF tokens
    owstack.ui.access     who the visitor is: local, an admin or tenant key, or a user signed in by a proxy
    owstack.ui.audit      admin actions into the audit log (refused while it cannot be written)
    owstack.ui.render     Jinja2 templates and their number formats; assets: the vendored htmx and uPlot
    owstack.ui.data       what the pages read: rollups, dims, the request log, the audit tail, break-even
    owstack.ui.pages      one module per page

Pages read the ledger's rollups (owstack.metering.rollups), never the raw rows for a chart; the request log
reads rows with a cursor and a bounded scan. Importing this package is free.
"""
