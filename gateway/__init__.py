"""The LLM gateway: an OpenAI-compatible proxy that charges the exact cost of every
request to a prepaid balance. The full map is docs/architecture.md; in short:

    gateway/         wiring: app (routes, dispatcher), settings (the one reader of the
                     environment), services (builds and stops every long-lived object),
                     errors, observe (metrics, request log), background, backends
      edge/          the socket: uvicorn's config, connection limits, bounded bodies
      api/           public routes (/v1/...); api/admin/ the operator's routes
      proxy/         the metered path, stage by stage over a narrow `Core`:
                     admission (check, price, hold) -> serving (down the fallback
                     chain) -> settlement (money rule, ledger row); streaming relays
      dialects/      pure translation between what clients speak and the internal form
      providers/     pure upstream wire formats, the upstream client, SSE decoding
      autoroute/     `model: "auto"`: classify, filter, score, stick
      ops/           operator tools: CLI, seed, discovery, price updates, migration
    billing/         money: tokens, prices, the money rule, holds, the ledger
    config_store/    configuration: schema, SQLite and Firestore stores, the snapshot

A streamed chat request: edge -> app -> api/endpoint -> api/openai -> proxy/admission
-> proxy/serving -> providers/<kind> -> proxy/streaming -> proxy/settlement -> billing.
"""
