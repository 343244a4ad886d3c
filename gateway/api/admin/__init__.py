"""The admin API: the operator's routes, each module one kind of thing it manages."""
