"""SQLite schema migrations, applied in order and recorded in `schema_version`.

The ledger and the balances live in the same database file as the
configuration. A trigger applies every ledger row to its user's balance in the
same transaction, so a balance always equals the sum of its ledger rows, and a
replayed row (same request id, `INSERT OR IGNORE`) changes nothing.
"""

from __future__ import annotations

MIGRATIONS: tuple[tuple[int, str], ...] = (
    (
        1,
        """
        CREATE TABLE providers (
            id TEXT PRIMARY KEY,
            kind TEXT NOT NULL,
            base_url TEXT NOT NULL DEFAULT '',
            api_key_env TEXT NOT NULL DEFAULT '',
            base_url_env TEXT NOT NULL DEFAULT '',
            api_key TEXT NOT NULL DEFAULT '',
            enabled INTEGER NOT NULL DEFAULT 1,
            display_name TEXT NOT NULL DEFAULT ''
        );
        CREATE TABLE model_configurations (
            id TEXT PRIMARY KEY,
            model_id TEXT NOT NULL UNIQUE,
            provider TEXT NOT NULL REFERENCES providers(id),
            input_price_per_million TEXT NOT NULL,
            output_price_per_million TEXT NOT NULL,
            cached_input_price_per_million TEXT,
            cache_write_price_per_million TEXT,
            context_window_size INTEGER NOT NULL,
            max_output_tokens INTEGER NOT NULL,
            is_active INTEGER NOT NULL DEFAULT 1,
            created_at TEXT NOT NULL,
            upstream_model TEXT NOT NULL DEFAULT '',
            tokenizer TEXT NOT NULL DEFAULT 'o200k_base',
            note TEXT NOT NULL DEFAULT ''
        );
        CREATE TABLE pricing_tiers (
            id TEXT PRIMARY KEY,
            name TEXT NOT NULL,
            markup_percent TEXT NOT NULL
        );
        CREATE TABLE users (
            id TEXT PRIMARY KEY,
            name TEXT NOT NULL,
            tier_id TEXT NOT NULL REFERENCES pricing_tiers(id),
            balance_nano INTEGER NOT NULL DEFAULT 0
        );
        CREATE TABLE api_keys (
            key_hash TEXT PRIMARY KEY,
            prefix TEXT NOT NULL,
            user_id TEXT NOT NULL REFERENCES users(id),
            name TEXT NOT NULL DEFAULT '',
            revoked INTEGER NOT NULL DEFAULT 0,
            created_at TEXT NOT NULL
        );
        CREATE TABLE ledger (
            request_id TEXT PRIMARY KEY,
            user_id TEXT NOT NULL REFERENCES users(id),
            kind TEXT NOT NULL,
            amount_nano INTEGER NOT NULL,
            model_id TEXT NOT NULL DEFAULT '',
            provider TEXT NOT NULL DEFAULT '',
            key_prefix TEXT NOT NULL DEFAULT '',
            prompt_tokens INTEGER NOT NULL DEFAULT 0,
            completion_tokens INTEGER NOT NULL DEFAULT 0,
            cache_read_tokens INTEGER NOT NULL DEFAULT 0,
            cache_write_tokens INTEGER NOT NULL DEFAULT 0,
            prices TEXT NOT NULL DEFAULT '{}',
            reason TEXT NOT NULL DEFAULT '',
            created_at TEXT NOT NULL
        );
        CREATE INDEX ledger_user_time ON ledger(user_id, created_at);
        CREATE TRIGGER ledger_applies_to_balance AFTER INSERT ON ledger
        BEGIN
            UPDATE users SET balance_nano = balance_nano + NEW.amount_nano
            WHERE id = NEW.user_id;
        END;
        """,
    ),
    (
        2,
        """
        ALTER TABLE providers ADD COLUMN rpm INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE providers ADD COLUMN tpm INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE api_keys ADD COLUMN rpm INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE api_keys ADD COLUMN tpm INTEGER NOT NULL DEFAULT 0;
        """,
    ),
    (
        3,
        """
        ALTER TABLE model_configurations ADD COLUMN fallbacks TEXT NOT NULL DEFAULT '[]';
        ALTER TABLE model_configurations
            ADD COLUMN fallback_priority INTEGER NOT NULL DEFAULT 100;
        ALTER TABLE providers ADD COLUMN fallback_priority INTEGER NOT NULL DEFAULT 100;
        ALTER TABLE providers ADD COLUMN connect_timeout REAL NOT NULL DEFAULT 0;
        ALTER TABLE providers ADD COLUMN read_timeout REAL NOT NULL DEFAULT 0;
        ALTER TABLE providers ADD COLUMN total_timeout REAL NOT NULL DEFAULT 0;
        """,
    ),
    (
        4,
        """
        ALTER TABLE model_configurations ADD COLUMN mode TEXT NOT NULL DEFAULT 'chat';
        """,
    ),
    (
        5,
        """
        CREATE TABLE router_config (
            id INTEGER PRIMARY KEY CHECK (id = 1),
            data TEXT NOT NULL
        );
        CREATE TABLE model_profiles (
            model_id TEXT PRIMARY KEY,
            data TEXT NOT NULL
        );
        CREATE TABLE config_history (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            entity TEXT NOT NULL,
            entity_id TEXT NOT NULL,
            action TEXT NOT NULL,
            actor TEXT NOT NULL,
            reason TEXT NOT NULL DEFAULT '',
            old TEXT,
            new TEXT,
            at TEXT NOT NULL
        );
        CREATE INDEX config_history_entity ON config_history(entity, entity_id, id);
        """,
    ),
    (
        6,
        """
        CREATE TABLE model_prices (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            model_id TEXT NOT NULL,
            effective_from TEXT NOT NULL,
            input_price_per_million TEXT NOT NULL,
            output_price_per_million TEXT NOT NULL,
            cached_input_price_per_million TEXT,
            cache_write_price_per_million TEXT,
            actor TEXT NOT NULL DEFAULT '',
            reason TEXT NOT NULL DEFAULT '',
            recorded_at TEXT NOT NULL
        );
        CREATE INDEX model_prices_model ON model_prices(model_id, effective_from);
        ALTER TABLE api_keys ADD COLUMN allowed_models TEXT NOT NULL DEFAULT '[]';
        ALTER TABLE api_keys ADD COLUMN spend_cap_nano INTEGER;
        ALTER TABLE ledger ADD COLUMN key_id TEXT NOT NULL DEFAULT '';
        """,
    ),
    (
        7,
        """
        ALTER TABLE model_configurations ADD COLUMN needs_price INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE model_configurations ADD COLUMN deprecated_at TEXT;
        CREATE TABLE sync_status (
            provider TEXT PRIMARY KEY,
            data TEXT NOT NULL
        );
        """,
    ),
    (
        8,
        """
        ALTER TABLE ledger ADD COLUMN uncollected_nano INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE ledger ADD COLUMN usage_source TEXT NOT NULL DEFAULT '';
        ALTER TABLE ledger ADD COLUMN usage_raw TEXT NOT NULL DEFAULT '';
        ALTER TABLE model_prices ADD COLUMN applied INTEGER NOT NULL DEFAULT 1;
        UPDATE model_prices SET applied = 0 WHERE effective_from > recorded_at;
        """,
    ),
    (
        9,
        # Teams, budgets, balance alerts (JSON documents, versioned like the router's);
        # team wallets' balances; the ledger with the team, who paid and the end user,
        # its foreign key on user_id now a trigger (a team wallet's top-up names no user).
        """
        CREATE TABLE teams (id TEXT PRIMARY KEY, data TEXT NOT NULL);
        CREATE TABLE budgets (id TEXT PRIMARY KEY, data TEXT NOT NULL);
        CREATE TABLE balance_alerts (id TEXT PRIMARY KEY, data TEXT NOT NULL);
        CREATE TABLE team_balances (
            team_id TEXT PRIMARY KEY,
            balance_nano INTEGER NOT NULL DEFAULT 0
        );
        CREATE TABLE alert_deliveries (
            key TEXT PRIMARY KEY,
            data TEXT NOT NULL,
            created_at TEXT NOT NULL
        );
        CREATE TABLE ledger_v9 (
            request_id TEXT PRIMARY KEY,
            user_id TEXT NOT NULL,
            kind TEXT NOT NULL,
            amount_nano INTEGER NOT NULL,
            model_id TEXT NOT NULL DEFAULT '',
            provider TEXT NOT NULL DEFAULT '',
            key_prefix TEXT NOT NULL DEFAULT '',
            prompt_tokens INTEGER NOT NULL DEFAULT 0,
            completion_tokens INTEGER NOT NULL DEFAULT 0,
            cache_read_tokens INTEGER NOT NULL DEFAULT 0,
            cache_write_tokens INTEGER NOT NULL DEFAULT 0,
            prices TEXT NOT NULL DEFAULT '{}',
            reason TEXT NOT NULL DEFAULT '',
            created_at TEXT NOT NULL,
            key_id TEXT NOT NULL DEFAULT '',
            uncollected_nano INTEGER NOT NULL DEFAULT 0,
            usage_source TEXT NOT NULL DEFAULT '',
            usage_raw TEXT NOT NULL DEFAULT '',
            team_id TEXT NOT NULL DEFAULT '',
            paid_by TEXT NOT NULL DEFAULT '',
            end_user TEXT NOT NULL DEFAULT ''
        );
        INSERT INTO ledger_v9 (rowid, request_id, user_id, kind, amount_nano, model_id, provider,
            key_prefix, prompt_tokens, completion_tokens, cache_read_tokens, cache_write_tokens,
            prices, reason, created_at, key_id, uncollected_nano, usage_source, usage_raw)
        SELECT rowid, request_id, user_id, kind, amount_nano, model_id, provider,
            key_prefix, prompt_tokens, completion_tokens, cache_read_tokens, cache_write_tokens,
            prices, reason, created_at, key_id, uncollected_nano, usage_source, usage_raw
        FROM ledger ORDER BY rowid;
        DROP TABLE ledger;
        ALTER TABLE ledger_v9 RENAME TO ledger;
        CREATE INDEX ledger_user_time ON ledger(user_id, created_at);
        CREATE INDEX ledger_key_time ON ledger(key_id, created_at);
        CREATE INDEX ledger_team_time ON ledger(team_id, created_at);
        CREATE TRIGGER ledger_names_a_user BEFORE INSERT ON ledger
        WHEN NOT (NEW.paid_by = 'team' AND NEW.user_id = '')
            AND NOT EXISTS (SELECT 1 FROM users WHERE id = NEW.user_id)
        BEGIN
            SELECT RAISE(ABORT, 'FOREIGN KEY constraint failed: no such user');
        END;
        CREATE TRIGGER ledger_applies_to_balance AFTER INSERT ON ledger
        WHEN NEW.paid_by != 'team'
        BEGIN
            UPDATE users SET balance_nano = balance_nano + NEW.amount_nano
            WHERE id = NEW.user_id;
        END;
        CREATE TRIGGER ledger_applies_to_team_wallet AFTER INSERT ON ledger
        WHEN NEW.paid_by = 'team'
        BEGIN
            INSERT OR IGNORE INTO team_balances (team_id, balance_nano) VALUES (NEW.team_id, 0);
            UPDATE team_balances SET balance_nano = balance_nano + NEW.amount_nano
            WHERE team_id = NEW.team_id;
        END;
        """,
    ),
)
