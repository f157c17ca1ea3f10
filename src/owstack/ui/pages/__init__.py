"""One module per console page: each builds its template's context from `owstack.ui.data` and returns a
`web.Response`. The page table is `PAGES` in `owstack.ui.console`."""
