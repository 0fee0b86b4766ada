"""The CKAN Action API: request parsing, the action functions and CKAN's response envelope."""
