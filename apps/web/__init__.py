"""The ground floor every app builds on: HTTP and htmx helpers, form and API plumbing, the API's
one error path, middleware and the template filters. It imports no app of the portal."""
