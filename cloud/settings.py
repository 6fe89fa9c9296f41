"""Typed configuration of the cloud service, read from `RUANG_*` environment variables."""

from __future__ import annotations

from ipaddress import IPv4Network, IPv6Network
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from cloud.claims import ClaimMappings, load_mappings_file
from ruang.mqtt_url import BrokerAddress, parse_broker_urls
from ruang.private_files import private_dir

_SQLITE_PREFIXES = ("sqlite+aiosqlite:///", "sqlite:///")
# The data classes of the retention purge (cloud/privacy/retention.py), named here so
# per-site periods are checked when the settings load.
RETENTION_CLASSES = ("events", "access_log", "boardings", "car_uses", "car_positions")


def _loopback_networks() -> list[IPv4Network | IPv6Network]:
    return [IPv4Network("127.0.0.0/8"), IPv6Network("::1/128")]


class CloudSettings(BaseSettings):
    # Inputs stay out of error messages: they include passwords and URLs with logins.
    model_config = SettingsConfigDict(
        env_prefix="RUANG_", extra="ignore", hide_input_in_errors=True
    )

    # RUANG_ENV: `development` creates a missing key or secret on first use (next to
    # snapshot_key_path); `production` never does: every replica is given the same keys
    # (`ruang keys generate`), and a missing one stops start-up naming its setting
    # (cloud/keys.py, docs/operations.md "Secrets and key rotation").
    environment: Literal["development", "production"] = Field(
        default="development",
        validation_alias=AliasChoices("environment", "RUANG_ENV", "RUANG_ENVIRONMENT"),
    )

    database_url: str = "sqlite+aiosqlite:///./var/ruang.sqlite3"
    # PostgreSQL connections the API keeps open (cloud/db/engine.py): at least the
    # number of requests served at once, or requests queue for the pool.
    db_pool_size: int = Field(default=40, ge=1, le=500)
    # mqtt:// or mqtts:// (TLS, verified against mqtt_ca_file when set). The login is
    # best left out: the cloud then logs in as cloud_mqtt_username/cloud_mqtt_password,
    # the account it also writes to Mosquitto's password file (see mqtt_login).
    # The nodes of a broker cluster are listed comma-separated (docs/operations.md).
    mqtt_url: str = "mqtt://127.0.0.1:1883"
    # A stable id is what makes the broker keep our persistent session (and queue
    # QoS 1 events) while the cloud is down; two cloud instances must not share it.
    # With a role other than `all` it is the prefix of each process's own id
    # (`<id>-<role>-<worker_id>`, cloud/runtime/roles.py).
    mqtt_client_id: str = "ruang-cloud"
    mqtt_keepalive_s: int = Field(default=30, ge=5)
    # Ingest workers split the stream with MQTT shared subscriptions ($share/...).
    # A broker without them (the NATS cluster tier: granted, never delivered) needs
    # false, and then exactly one ingest worker (docs/scale.md, "The broker tier").
    mqtt_shared_subscriptions: bool = True

    # Process role (cloud/runtime/roles.py, docs/operations.md "Running roles"): `all`
    # runs everything in one process (the default, and the only one SQLite allows);
    # `api`, `ingest` and `jobs` split it across processes sharing PostgreSQL.
    role: Literal["all", "api", "ingest", "jobs"] = "all"
    # The slot of this process among those of its role (0, 1, ...): an ingest worker's
    # MQTT client id is derived from it, so a restarted worker reclaims its session.
    worker_id: int = Field(default=0, ge=0, le=9999)

    influx_url: str | None = None
    influx_token: str = ""
    influx_org: str = "ruang"
    influx_bucket: str = "ruang"
    telemetry_sqlite_path: Path = Path("./var/telemetry.sqlite3")

    http_host: str = "127.0.0.1"
    http_port: int = 8000

    # Authentication: production verifies tokens against the OIDC provider's JWKS;
    # without one, a local development key signs and verifies (`ruang token`).
    auth_issuer: str = "ruang-dev"
    auth_audience: str = "ruang"
    auth_jwks_url: str | None = None
    auth_dev_key_path: Path = Path("./var/dev-signing-key.pem")
    # The dashboards' "pick who you are" sign-in, for local use and demos only: it
    # is refused whenever a JWKS (a real identity provider) is configured, and in
    # production (anyone could sign in as anyone with the shared token key).
    dev_login: bool = True
    # Session cookie of the dashboards; Secure should be on behind HTTPS.
    session_cookie_secure: bool = False
    session_ttl_s: int = Field(default=8 * 3600, ge=60)
    # Dashboard sign-in through the OIDC provider (dashboards/oidc.py: code flow with
    # PKCE). Its access token becomes the session, so auth_jwks_url/issuer/audience
    # above must describe that provider's access tokens. The redirect URL defaults to
    # this server's /login/callback as the request sees it; set it behind a proxy.
    oidc_issuer_url: str | None = None
    oidc_client_id: str | None = None
    oidc_client_secret: SecretStr | None = None
    oidc_scopes: str = "openid profile"
    oidc_redirect_url: str | None = None
    # Claim mapping per identity provider (cloud/claims.py, docs/identity.md): as
    # JSON in RUANG_OIDC_CLAIMS, or YAML in the file RUANG_OIDC_CLAIMS_FILE (which wins).
    # Neither: roles and sites verbatim from the token, as always.
    oidc_claims: ClaimMappings = Field(default_factory=ClaimMappings)
    oidc_claims_file: Path | None = None
    # A person's sign-out-everywhere or deactivation reaches every replica within this
    # long (cloud/people/sessions.py caches the check); at most a minute.
    session_check_ttl_s: float = Field(default=60.0, ge=0, le=60)

    # Building layout (YAML/JSON, see cloud/buildings/sample_layout/) applied at start-up;
    # upserts by id.
    layout_file: Path | None = None

    node_offline_after_s: float = Field(default=120.0, gt=0)
    # Telemetry state is coalesced in memory and written in one transaction per
    # interval (or sooner once this many messages are pending).
    flush_interval_s: float = Field(default=0.5, gt=0)
    flush_max_messages: int = Field(default=20_000, ge=1)
    # Fleet view health history (cloud.fleet.health): at most one sample per node per
    # interval, pruned after this many hours by the ingestion sweep.
    fleet_sample_interval_s: float = Field(default=60.0, ge=0)
    fleet_history_hours: float = Field(default=48.0, gt=0)
    # Ingestion refuses a message whose edge `ts` lies outside this window around the
    # cloud's receive time (counted as `clock_skew`, shown as an alarm on the fleet
    # view). Backlog drained after an outage is legitimately days old; a Pi without
    # its RTC that never synchronised its clock says 1970. docs/mqtt-contract.md.
    ingest_max_age_s: float = Field(default=30 * 86400.0, gt=0)
    ingest_max_ahead_s: float = Field(default=600.0, gt=0)

    # Enrolment and broker credentials (cloud.fleet.enrolment, cloud.fleet.broker_credentials).
    # Unset files mean "this cloud does not manage the broker's accounts".
    mosquitto_password_file: Path | None = None
    mosquitto_acl_file: Path | None = None
    # Mosquitto reloads both files on SIGHUP; unset means nobody is signalled.
    mosquitto_pid_file: Path | None = None
    # The broker address handed to enrolled nodes (their view of it, often mqtts://);
    # unset means mqtt_url without its credentials.
    public_mqtt_url: str | None = None
    # CA certificate of the broker's TLS listener, handed to nodes at enrolment.
    mqtt_ca_file: Path | None = None
    cloud_mqtt_username: str = "ruang-cloud"
    cloud_mqtt_password: SecretStr | None = None
    # Who keeps the broker's node accounts (cloud/fleet/broker_accounts.py): `files`
    # writes the files above and signals the pid; `dynsec` sends commands to Mosquitto's
    # dynamic-security plugin over MQTT, logged in as the cloud, so the broker may run
    # on another machine (docs/operations.md "Broker accounts over the network").
    # Unset: `files` when mosquitto_password_file is set, else nobody manages them.
    broker_accounts: Literal["files", "dynsec"] | None = None
    # How long one dynamic-security request may take (connect, commands, answers).
    broker_admin_timeout_s: float = Field(default=10.0, gt=0)
    enrolment_node_prefix: str = "ikn-node"

    # Webhook deliveries (cloud.integrations.webhooks): retry n waits about base * 2**(n-1)
    # seconds (jittered, capped at 10 min); after max attempts a delivery gives up.
    webhook_backoff_base_s: float = Field(default=1.0, gt=0)
    webhook_max_attempts: int = Field(default=8, ge=1)
    # Webhooks go to public addresses only (cloud.integrations.webhook_targets): these host names
    # or CIDR ranges are allowed besides, e.g. `hooks.internal,10.20.0.0/16`.
    webhook_allowed_hosts: Annotated[list[str], NoDecode] = Field(default_factory=list)

    # Who may scrape GET /metrics without a token (cloud/api/metrics.py): client networks,
    # comma-separated, e.g. `127.0.0.0/8,::1/128,10.20.0.5/32` for the scraper's host.
    # Behind a load balancer the scraper reaches each replica directly, not through it.
    metrics_allow_from: Annotated[list[IPv4Network | IPv6Network], NoDecode] = Field(
        default_factory=_loopback_networks
    )

    # Desk snapshots (cloud.fleet.snapshots): the EC P-256 key that signs them (created
    # 0600 on first use) and how often every node's snapshot is re-sent anyway.
    snapshot_key_path: Path = Path("./var/snapshot-signing-key.pem")
    # During a key rotation: PEM files of public keys nodes should trust besides the
    # signing key's (the next key before the switch, the previous one after it), served
    # with it at GET /api/v1/snapshot-keys. Comma-separated in the environment.
    snapshot_extra_public_keys: Annotated[list[Path], NoDecode] = Field(default_factory=list)
    snapshot_refresh_s: float = Field(default=600.0, gt=0)
    snapshot_debounce_s: float = Field(default=0.5, ge=0)
    # Bookings still `booked` after their site's check-in grace become no-shows.
    autorelease_interval_s: float = Field(default=30.0, gt=0)

    # Notifications (cloud/notifications/): the SMTP server emails go through, as
    # smtp://[user:password@]host[:port] (plain, port 25), smtp+starttls://... (STARTTLS,
    # port 587) or smtps://... (TLS from the start, port 465). Unset: no email at all,
    # notifications are in-app only (said at start-up, and in each delivery log row).
    smtp_url: SecretStr | None = None
    smtp_from: str = "Ruang <noreply@ruang.invalid>"
    smtp_timeout_s: float = Field(default=20.0, gt=0)
    # Retry n of an email waits about base * 2**(n-1) s (jittered, capped at 10 min);
    # after max attempts the delivery gives up (kept in the log as gave_up).
    notify_backoff_base_s: float = Field(default=2.0, gt=0)
    notify_max_attempts: int = Field(default=12, ge=1)
    notify_poll_s: float = Field(default=0.5, gt=0)
    # Notifications (bodies, guest addresses) are deleted this long after creation
    # once nothing is pending for them (docs/privacy.md).
    notify_retention_days: float = Field(default=90.0, gt=0)
    # A booking not checked into gets a reminder this long before its no-show deadline.
    booking_reminder_lead_min: float = Field(default=10.0, gt=0)
    # A confirmed shuttle seat gets a reminder this long before its departure.
    seat_reminder_lead_min: float = Field(default=15.0, gt=0)
    # Shuttle seats (cloud.transport.reservations, docs/transport.md "Seat reservations"):
    # a trip with no vehicle planned on it has its route's capacity from this map
    # (route id -> riders; JSON in the environment), else the default.
    shuttle_default_capacity: int = Field(default=40, ge=0, le=1000)
    shuttle_route_capacity: dict[str, Annotated[int, Field(ge=0, le=1000)]] = Field(
        default_factory=dict
    )
    # A confirmed seat not boarded this long after the bus left its stop is a no-show;
    # the seat job (no-shows, expired waitlist places) runs this often.
    seat_noshow_grace_min: float = Field(default=2.0, ge=0)
    seat_job_interval_s: float = Field(default=30.0, gt=0)
    # A pool car still out this long after its booking's end raises "unreturned"
    # (past its end at all: "overdue").
    poolcar_unreturned_after_h: float = Field(default=2.0, gt=0)

    # Admin audit log (cloud.admin.audit): entries are kept this many days (the security
    # policy sets it; docs/privacy.md), the purge runs this often.
    audit_retention_days: int = Field(default=730, ge=1)
    audit_purge_interval_s: float = Field(default=3600.0, gt=0)

    # Where people reach the web app, as printed in the desks' QR check-in codes
    # (`{public_base_url}/checkin/{desk}?k=...`); reprint the codes if it changes.
    public_base_url: str = "http://127.0.0.1:8000"
    # Secret of the QR check-in keys (cloud.bookings.qrcheckin), as a value or a file; in
    # development unset = a random one kept in `checkin-qr-secret` next to
    # snapshot_key_path. Changing it voids printed codes.
    checkin_qr_secret: SecretStr | None = None
    checkin_qr_secret_file: Path | None = None
    # Secret signing visitors' QR passes (cloud.visitors.passes), as a value or a file; in
    # development unset = a random one kept in `visitor-pass-secret` next to
    # snapshot_key_path. Changing it voids passes already sent.
    visitor_pass_secret: SecretStr | None = None
    visitor_pass_secret_file: Path | None = None
    # Key of the OIDC sign-in flow cookie (dashboards/oidc.py), as a value or a file. Unset:
    # derived from oidc_client_secret; a public client (no secret) in development gets a
    # per-process key, in production this must be set so every replica reads the cookie.
    oidc_flow_secret: SecretStr | None = None
    oidc_flow_secret_file: Path | None = None
    # Secret of the badge pseudonyms in the time series (cloud/privacy/pseudonyms.py), as
    # a value or a file; in development unset = a random one kept in `pseudonym-secret`
    # next to snapshot_key_path. Rotate it with a new key id: lines keep the id they
    # were written with (docs/privacy.md "Pseudonymous time series").
    pseudonym_secret: SecretStr | None = None
    pseudonym_secret_file: Path | None = None
    pseudonym_key_id: str = Field(default="k1", pattern=r"^[a-z0-9]{1,8}$")
    # A visit (guest name, contact, times) is deleted this long after its window ends
    # (docs/privacy.md, "Visitors"); the purge runs every visitor_purge_interval_s.
    visitor_retention_days: float = Field(default=30.0, gt=0)
    visitor_purge_interval_s: float = Field(default=3600.0, gt=0)
    # Retention of the raw, per-person records, per data class (cloud/privacy/retention.py,
    # docs/privacy.md "Retention"): rows older than this many days are deleted by the
    # jobs leader every retention_purge_interval_s, retention_batch_rows per transaction.
    retention_events_days: float = Field(default=90.0, gt=0)
    retention_access_log_days: float = Field(default=365.0, gt=0)
    retention_boardings_days: float = Field(default=90.0, gt=0)
    retention_car_uses_days: float = Field(default=365.0, gt=0)
    retention_car_positions_days: float = Field(default=90.0, gt=0)
    retention_purge_interval_s: float = Field(default=3600.0, gt=0)
    retention_batch_rows: int = Field(default=5000, ge=1)
    # Per-site periods that replace the ones above for a site's records, as JSON:
    # RUANG_RETENTION_SITE_DAYS='{"ikn-kipp-a1": {"access_log": 730, "events": 60}}'.
    # Keys inside a site are the class names of RETENTION_CLASSES.
    retention_site_days: dict[str, dict[str, float]] = Field(default_factory=dict)

    @property
    def dev_login_enabled(self) -> bool:
        return self.dev_login and self.auth_jwks_url is None and self.environment != "production"

    @property
    def mqtt_broker(self) -> BrokerAddress:
        """The first broker of mqtt_url (the only one unless it lists a cluster's nodes)."""
        return self.mqtt_brokers[0]

    @property
    def mqtt_brokers(self) -> list[BrokerAddress]:
        """Every node mqtt_url lists (comma-separated); the session tries them in turn."""
        return parse_broker_urls(self.mqtt_url)

    @property
    def mqtt_login(self) -> tuple[str | None, str | None]:
        """(username, password) the cloud connects with: the URL's, else its own account.

        Without cloud_mqtt_password and without a login in the URL: anonymous.
        """
        broker = self.mqtt_broker
        if broker.username is not None:
            return broker.username, broker.password
        if self.cloud_mqtt_password is not None:
            return self.cloud_mqtt_username, self.cloud_mqtt_password.get_secret_value()
        return None, None

    @model_validator(mode="after")
    def _one_broker_credential(self) -> CloudSettings:
        # One account, one place: a URL login that is not the account written to the
        # password file would connect as someone the broker's ACL does not know.
        brokers = parse_broker_urls(self.mqtt_url)  # also refuses a malformed URL here
        if len({(b.username, b.password) for b in brokers}) > 1:
            raise ValueError(
                "RUANG_MQTT_URL lists broker nodes with different logins: the cloud has one "
                "account, give it once (or in none of the URLs)"
            )
        broker = brokers[0]
        if broker.username is None or self.cloud_mqtt_password is None:
            return self
        if (broker.username, broker.password) != (
            self.cloud_mqtt_username,
            self.cloud_mqtt_password.get_secret_value(),
        ):
            raise ValueError(
                "RUANG_MQTT_URL carries a broker login that differs from "
                "RUANG_CLOUD_MQTT_USERNAME/RUANG_CLOUD_MQTT_PASSWORD (the account written "
                "to Mosquitto's password file); set it once: drop the login from the URL"
            )
        return self

    @property
    def broker_accounts_kind(self) -> Literal["files", "dynsec"] | None:
        """The backend keeping the broker's accounts; None when the cloud keeps none."""
        if self.broker_accounts is not None:
            return self.broker_accounts
        return "files" if self.mosquitto_password_file is not None else None

    @field_validator("broker_accounts", mode="before")
    @classmethod
    def _broker_accounts_empty_is_unset(cls, value: object) -> object:
        return None if value == "" else value

    @model_validator(mode="after")
    def _broker_accounts_usable(self) -> CloudSettings:
        # Refused at start-up rather than at the first enrolment, naming the setting.
        if self.broker_accounts == "files" and self.mosquitto_password_file is None:
            raise ValueError("RUANG_BROKER_ACCOUNTS=files needs RUANG_MOSQUITTO_PASSWORD_FILE")
        if self.broker_accounts == "dynsec" and self.mqtt_login[0] is None:
            raise ValueError(
                "RUANG_BROKER_ACCOUNTS=dynsec needs the cloud's broker login "
                "(RUANG_CLOUD_MQTT_PASSWORD): the plugin answers only an account allowed "
                "on its control topic"
            )
        return self

    @model_validator(mode="after")
    def _claims_from_file(self) -> CloudSettings:
        # Read once at start-up, so a broken mapping stops the cloud with its reason
        # instead of refusing every sign-in.
        if self.oidc_claims_file is not None:
            self.oidc_claims = load_mappings_file(self.oidc_claims_file)
        return self

    @field_validator("retention_site_days")
    @classmethod
    def _known_retention_classes(
        cls, value: dict[str, dict[str, float]]
    ) -> dict[str, dict[str, float]]:
        for site, periods in value.items():
            unknown = sorted(set(periods) - set(RETENTION_CLASSES))
            if unknown:
                raise ValueError(
                    f"site {site!r}: unknown retention class {', '.join(unknown)} "
                    f"(known: {', '.join(RETENTION_CLASSES)})"
                )
            if any(days <= 0 for days in periods.values()):
                raise ValueError(f"site {site!r}: retention periods must be > 0 days")
        return value

    @field_validator(
        "influx_url", "smtp_url", "checkin_qr_secret", "checkin_qr_secret_file",
        "visitor_pass_secret", "visitor_pass_secret_file", "oidc_flow_secret",
        "oidc_flow_secret_file", "oidc_claims_file", "pseudonym_secret", "pseudonym_secret_file",
        mode="before",
    )  # fmt: skip
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        # `RUANG_INFLUX_URL=` in a .env file means "no InfluxDB", not an empty URL.
        return None if value == "" else value

    @field_validator(
        "webhook_allowed_hosts", "snapshot_extra_public_keys", "metrics_allow_from", mode="before"
    )
    @classmethod
    def _comma_list(cls, value: object) -> object:
        # From the environment: a comma-separated list, not JSON.
        if isinstance(value, str):
            return [item.strip() for item in value.split(",") if item.strip()]
        return value

    @field_validator("database_url")
    @classmethod
    def _create_sqlite_parent(cls, value: str) -> str:
        for prefix in _SQLITE_PREFIXES:
            if value.startswith(prefix):
                path = value[len(prefix) :].split("?", 1)[0]
                if path and path != ":memory:":
                    private_dir(Path(path).parent)
        return value
