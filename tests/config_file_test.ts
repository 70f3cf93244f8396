/**
 * Unit tests for the config file (--config / CLU_WS_CONFIG, TOML or JSON) and
 * the access and TLS options of lib/config.ts: lists, booleans, origin
 * patterns, tokens, TLS files, and the layers flags > env > file > defaults.
 * No I/O: every file is served by an injected readTextFile.
 */

import assert from "node:assert/strict";
import { type Config, ConfigError, helpText, parseCli, type ParseCliOptions } from "../lib/config/config.ts";
import { parseTokens, TokensError } from "../lib/access/tokens.ts";
import { Access } from "../lib/access/admission.ts";

type Env = Record<string, string | undefined>;

const FIXED_HEX = "0123456789ab";

/** A readTextFile serving `files`; any other path fails like a missing file, and every read is recorded. */
function files(contents: Record<string, string>, reads: string[] = []): (path: string) => string {
  return (path) => {
    reads.push(path);
    if (Object.hasOwn(contents, path)) return contents[path];
    throw new Deno.errors.NotFound(`No such file or directory (os error 2): readfile '${path}'`);
  };
}

/** Parses a run request and returns its config, failing on help/version. */
function run(args: string[], env: Env = {}, contents: Record<string, string> = {}, reads?: string[]): Config {
  const options: ParseCliOptions = { randomHex: () => FIXED_HEX, readTextFile: files(contents, reads) };
  const request = parseCli(args, env, options);
  if (request.kind !== "run") throw new Error(`expected a run request, got ${request.kind}`);
  return request.config;
}

/** Asserts parseCli throws a ConfigError and returns its message. */
function configError(args: string[], env: Env = {}, contents: Record<string, string> = {}): string {
  let caught: unknown;
  try {
    parseCli(args, env, { randomHex: () => FIXED_HEX, readTextFile: files(contents) });
  } catch (err) {
    caught = err;
  }
  assert.ok(caught !== undefined, `expected a ConfigError for ${JSON.stringify(args)}, got none`);
  assert.ok(
    caught instanceof ConfigError,
    `expected a ConfigError for ${JSON.stringify(args)}, got ${String(caught)}`,
  );
  assert.equal(caught.name, "ConfigError");
  return caught.message;
}

const TOML_PATH = "/etc/clu-ws/clu-ws.toml";
const JSON_PATH = "/etc/clu-ws/clu-ws.json";

/** Runs with a TOML config file given by --config. */
function withToml(
  text: string,
  args: string[] = [],
  env: Env = {},
  more: Record<string, string> = {},
): Config {
  return run(["--config", TOML_PATH, ...args], env, { [TOML_PATH]: text, ...more });
}

/** The ConfigError of a TOML config file given by --config. */
function tomlError(
  text: string,
  args: string[] = [],
  env: Env = {},
  more: Record<string, string> = {},
): string {
  return configError(["--config", TOML_PATH, ...args], env, { [TOML_PATH]: text, ...more });
}

const CERT_PEM = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
const KEY_PEM = "-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n";
const TLS_FILES = { "/etc/clu-ws/cert.pem": CERT_PEM, "/etc/clu-ws/key.pem": KEY_PEM };

/** Every option by its long name, as a config file would set them. */
const EVERY_OPTION = {
  "port": 8000,
  "host": "127.0.0.1",
  "rabbitmq-host": "rabbit.example",
  "rabbitmq-port": 5673,
  "user": "bob",
  "password": "file-pw",
  "vhost": "lvm",
  "exchange": "my_exchange",
  "name": "gw-1",
  "heartbeat": 30,
  "log-level": "debug",
  "log-format": "json",
  "client-buffer": "2MiB",
  "slow-client": "drop",
  "max-message-size": "128KiB",
  "max-clients": 50,
  "command-rate": 5,
  "command-burst": 10,
  "idle-timeout": 120,
  "tokens-file": "/etc/clu-ws/tokens.toml",
  "allow-origin": ["https://ops.example.org", "https://*.lco.cl"],
  "read-only": true,
  "allow-actor": ["lvm.*", "lvmecp"],
  "deny-actor": ["lvm.sp1.*"],
  "tls-cert": "/etc/clu-ws/cert.pem",
  "tls-key": "/etc/clu-ws/key.pem",
  "metrics-token": "metrics-secret",
};

const EVERY_OPTION_TOML = `# clu-ws configuration
port = 8000
host = "127.0.0.1"
rabbitmq-host = "rabbit.example"
rabbitmq-port = 5673
user = "bob"
password = "file-pw"
vhost = "lvm"
exchange = "my_exchange"
name = "gw-1"
heartbeat = 30
log-level = "debug"
log-format = "json"
client-buffer = "2MiB"
slow-client = "drop"
max-message-size = "128KiB"
max-clients = 50
command-rate = 5
command-burst = 10
idle-timeout = 120
tokens-file = "/etc/clu-ws/tokens.toml"
allow-origin = ["https://ops.example.org", "https://*.lco.cl"]
read-only = true
allow-actor = ["lvm.*", "lvmecp"]
deny-actor = ["lvm.sp1.*"]
tls-cert = "/etc/clu-ws/cert.pem"
tls-key = "/etc/clu-ws/key.pem"
metrics-token = "metrics-secret"
`;

/** What EVERY_OPTION gives: the defaults (so options added later keep their defaults) with every value set. */
function everyOptionConfig(): Config {
  const defaults = run([]);
  const config: Config = {
    ...defaults,
    host: "127.0.0.1",
    port: 8000,
    broker: {
      protocol: "amqp",
      hostname: "rabbit.example",
      port: 5673,
      username: "bob",
      password: "file-pw",
      vhost: "lvm",
      heartbeat: 30,
    },
    exchange: "my_exchange",
    name: "gw-1",
    logLevel: "debug",
    logFormat: "json",
    limits: {
      ...defaults.limits,
      clientBufferBytes: 2 * 1024 * 1024,
      slowClient: "drop",
      maxMessageBytes: 128 * 1024,
      maxClients: 50,
      commandRate: 5,
      commandBurst: 10,
      idleTimeoutSeconds: 120,
    },
    access: {
      ...defaults.access,
      tokensFile: "/etc/clu-ws/tokens.toml",
      tokensText: undefined,
      allowOrigins: ["https://ops.example.org", "https://*.lco.cl"],
      readOnly: true,
      allowActors: ["lvm.*", "lvmecp"],
      denyActors: ["lvm.sp1.*"],
      metricsToken: "metrics-secret",
    },
    tls: { cert: CERT_PEM, key: KEY_PEM },
    warnings: [],
  };
  config.brokers = [config.broker];
  return config;
}

// ---------------------------------------------------------------- reading the file

Deno.test("config file: a TOML file sets every option by its long name", () => {
  const reads: string[] = [];
  const config = run(["--config", TOML_PATH], {}, { [TOML_PATH]: EVERY_OPTION_TOML, ...TLS_FILES }, reads);
  assert.deepEqual(config, everyOptionConfig());
  assert.deepEqual(reads, [TOML_PATH, "/etc/clu-ws/cert.pem", "/etc/clu-ws/key.pem"]);
});

Deno.test("config file: a .json file is read as JSON and sets every option", () => {
  const config = run(["--config", JSON_PATH], {}, {
    [JSON_PATH]: JSON.stringify(EVERY_OPTION, null, 2),
    ...TLS_FILES,
  });
  assert.deepEqual(config, everyOptionConfig());
});

Deno.test("config file: the TOML and JSON forms give the same config", () => {
  const toml = withToml(EVERY_OPTION_TOML, [], {}, TLS_FILES);
  const json = run(["--config", "/x/c.json"], {}, {
    "/x/c.json": JSON.stringify(EVERY_OPTION),
    ...TLS_FILES,
  });
  assert.deepEqual(toml, json);
});

Deno.test("config file: url, password-file and tokens-file in a file", () => {
  const config = withToml(
    `url = "amqps://carol@mq.example:5700/prod"\npassword-file = "/run/secrets/pw"\n`,
    [],
    {},
    { "/run/secrets/pw": "pw-from-file\n" },
  );
  assert.deepEqual(config.broker, {
    protocol: "amqps",
    hostname: "mq.example",
    port: 5700,
    username: "carol",
    password: "pw-from-file",
    vhost: "prod",
    heartbeat: 5,
  });
  assert.deepEqual(config.warnings, [], "a password in a file or URL in a file is not on the command line");
});

Deno.test("config file: a URL with a password in the file gives no command-line warning", () => {
  const config = withToml(`url = "amqp://u:file-url-pw@mq/"\n`);
  assert.equal(config.broker.password, "file-url-pw");
  assert.deepEqual(config.warnings, []);
});

Deno.test("config file: an empty TOML file, or an empty JSON object, changes nothing", () => {
  const defaults = run([]);
  assert.deepEqual(withToml(""), defaults);
  assert.deepEqual(withToml("# only a comment\n"), defaults);
  assert.deepEqual(run(["--config", "/c.json"], {}, { "/c.json": "{}" }), defaults);
});

Deno.test("config file: the extension decides the format (.json is JSON, anything else TOML)", () => {
  assert.equal(run(["--config", "/c.conf"], {}, { "/c.conf": "port = 1234" }).port, 1234);
  assert.equal(run(["--config", "/c"], {}, { "/c": "port = 1234" }).port, 1234);
  const tomlInJson = configError(["--config", "/c.json"], {}, { "/c.json": "port = 1234" });
  assert.match(tomlInJson, /^\/c\.json: not valid JSON \(/);
  const jsonInToml = configError(["--config", "/c.toml"], {}, { "/c.toml": `{"port": 1234}` });
  assert.match(jsonInToml, /^\/c\.toml: not valid TOML \(/);
});

Deno.test("config file: invalid TOML or JSON is a one-line ConfigError naming the file", () => {
  for (const text of ["port = ", "port = 80\nport = 81", "[[", "host = 'unterminated"]) {
    const message = tomlError(text);
    assert.match(message, /^\/etc\/clu-ws\/clu-ws\.toml: not valid TOML \(.+\)$/, text);
    assert.ok(!message.includes("\n"), message);
  }
  for (const text of ["{", `{"port": 80,}`, "", "port: 80"]) {
    const message = configError(["--config", JSON_PATH], {}, { [JSON_PATH]: text });
    assert.match(message, /^\/etc\/clu-ws\/clu-ws\.json: not valid JSON \(.+\)$/, text);
  }
});

Deno.test("config file: a JSON file that is not an object is a ConfigError naming the file", () => {
  for (const text of ["[]", `["port", 80]`, `"port"`, "null", "80", "true"]) {
    const message = configError(["--config", JSON_PATH], {}, { [JSON_PATH]: text });
    assert.equal(message, `${JSON_PATH}: the config file must hold a table of options`, text);
  }
});

Deno.test("config file: an unreadable file is a ConfigError naming where the path came from", () => {
  const flag = configError(["--config", "/missing/clu-ws.toml"]);
  assert.match(flag, /^--config: cannot read config file '\/missing\/clu-ws\.toml' \(.*No such file/);
  const env = configError([], { CLU_WS_CONFIG: "/missing/env.toml" });
  assert.match(env, /^CLU_WS_CONFIG: cannot read config file '\/missing\/env\.toml' \(/);
  const denied = (() => {
    try {
      parseCli(["--config", "/root/c.toml"], {}, {
        readTextFile: () => {
          throw new Deno.errors.PermissionDenied("Permission denied (os error 13)");
        },
      });
    } catch (err) {
      return err;
    }
  })();
  assert.ok(denied instanceof ConfigError);
  assert.match(denied.message, /Permission denied/);
});

Deno.test("config file: an unknown key is a ConfigError naming the key and the file", () => {
  for (const key of ["prot", "port_", "rabbitmq_host", "CLU_WS_PORT", "p", "tokens_file", "metrics"]) {
    const message = tomlError(`${JSON.stringify(key)} = "1"\n`);
    assert.equal(
      message,
      `${TOML_PATH}: unknown option '${key}'; the keys are the long flag names (see --help)`,
    );
  }
  const json = configError(["--config", JSON_PATH], {}, { [JSON_PATH]: `{"port": 1, "verbose": true}` });
  assert.equal(json, `${JSON_PATH}: unknown option 'verbose'; the keys are the long flag names (see --help)`);
});

Deno.test("config file: config, help and version are not config-file keys", () => {
  for (const key of ["config", "help", "version"]) {
    const message = tomlError(`${key} = true\n`);
    assert.match(message, new RegExp(`^${TOML_PATH}: unknown option '${key}'`));
  }
});

Deno.test("config file: a nested table is an unknown key, naming the table", () => {
  const message = tomlError(`port = 1\n\n[broker]\nhost = "x"\n`);
  assert.match(message, /unknown option 'broker'/);
  assert.ok(message.includes(TOML_PATH));
});

Deno.test("config file: a value of the wrong shape is a ConfigError naming the option and the file", () => {
  assert.equal(tomlError(`port = [8000]`), `${TOML_PATH}: option 'port' must be a single value`);
  assert.equal(tomlError(`host = { a = 1 }`), `${TOML_PATH}: option 'host' must be a single value`);
  assert.equal(tomlError(`host = 1979-05-27`), `${TOML_PATH}: option 'host' must be a single value`);
  assert.equal(
    tomlError(`allow-origin = { a = 1 }`),
    `${TOML_PATH}: option 'allow-origin' must be a list or single value`,
  );
  assert.equal(
    configError(["--config", JSON_PATH], {}, { [JSON_PATH]: `{"port": null}` }),
    `${JSON_PATH}: option 'port' must be a single value`,
  );
});

Deno.test("config file: a bad value in the file is a ConfigError naming the file and the key", () => {
  assert.equal(
    tomlError(`port = "http"`),
    `${TOML_PATH}: port: 'http' is not a port; use a whole number from 0 to 65535`,
  );
  assert.match(
    tomlError(`log-level = "loud"`),
    /^\/etc\/clu-ws\/clu-ws\.toml: log-level: 'loud' is not one of/,
  );
  assert.match(tomlError(`heartbeat = 2.5`), /^\/etc\/clu-ws\/clu-ws\.toml: heartbeat: '2\.5'/);
  assert.match(tomlError(`max-clients = 0`), /^\/etc\/clu-ws\/clu-ws\.toml: max-clients: '0'/);
  assert.match(tomlError(`url = "http://mq/"`), /^\/etc\/clu-ws\/clu-ws\.toml: url: unsupported scheme/);
  assert.match(tomlError(`exchange = "bad name"`), /^\/etc\/clu-ws\/clu-ws\.toml: exchange:/);
});

// ---------------------------------------------------------------- where the path comes from

Deno.test("config file: CLU_WS_CONFIG names the file", () => {
  const reads: string[] = [];
  const config = run([], { CLU_WS_CONFIG: "/srv/clu-ws.toml" }, { "/srv/clu-ws.toml": "port = 7001" }, reads);
  assert.equal(config.port, 7001);
  assert.deepEqual(reads, ["/srv/clu-ws.toml"]);
});

Deno.test("config file: --config wins over CLU_WS_CONFIG, which is then not read", () => {
  const reads: string[] = [];
  const config = run(
    ["--config", "/flag.toml"],
    { CLU_WS_CONFIG: "/env.toml" },
    { "/flag.toml": "port = 7002", "/env.toml": "port = 7003" },
    reads,
  );
  assert.equal(config.port, 7002);
  assert.deepEqual(reads, ["/flag.toml"]);
});

Deno.test("config file: no --config and an empty CLU_WS_CONFIG read no file", () => {
  const reads: string[] = [];
  run([], {}, {}, reads);
  run([], { CLU_WS_CONFIG: "" }, {}, reads);
  assert.deepEqual(reads, []);
});

Deno.test("config file: errors from a CLU_WS_CONFIG file name the file", () => {
  const message = configError([], { CLU_WS_CONFIG: "/srv/c.toml" }, { "/srv/c.toml": "nope = 1" });
  assert.match(message, /^\/srv\/c\.toml: unknown option 'nope'/);
});

Deno.test("config file: --help mentions the config file and its precedence", () => {
  const text = helpText();
  assert.match(text, /--config <value>/);
  assert.match(text, /flags win over environment variables, which win over a --config file/);
  assert.match(text, /\(metrics-token: env or file\)/);
  assert.match(text, /\(tokens: env or file\)/);
});

// ---------------------------------------------------------------- precedence

Deno.test("config file: flags > env > file > defaults, option by option", () => {
  const cases: { flag?: string[]; env: Env; file: string; get: (c: Config) => unknown; values: unknown[] }[] =
    [
      {
        flag: ["--port", "1001"],
        env: { CLU_WS_PORT: "1002" },
        file: "port = 1003",
        get: (c) => c.port,
        values: [1001, 1002, 1003, 9876],
      },
      {
        flag: ["--host", "10.0.0.1"],
        env: { CLU_WS_HOST: "10.0.0.2" },
        file: `host = "10.0.0.3"`,
        get: (c) => c.host,
        values: ["10.0.0.1", "10.0.0.2", "10.0.0.3", "0.0.0.0"],
      },
      {
        flag: ["--log-level", "error"],
        env: { CLU_WS_LOG_LEVEL: "warning" },
        file: `log-level = "debug"`,
        get: (c) => c.logLevel,
        values: ["error", "warning", "debug", "info"],
      },
      {
        flag: ["--exchange", "ex_flag"],
        env: { CLU_WS_EXCHANGE: "ex_env" },
        file: `exchange = "ex_file"`,
        get: (c) => c.exchange,
        values: ["ex_flag", "ex_env", "ex_file", "sdss_exchange"],
      },
      {
        flag: ["--client-buffer", "4KiB"],
        env: { CLU_WS_CLIENT_BUFFER: "8KiB" },
        file: `client-buffer = "16KiB"`,
        get: (c) => c.limits.clientBufferBytes,
        values: [4096, 8192, 16384, 1048576],
      },
      {
        flag: ["--tokens-file", "/flag/tokens"],
        env: { CLU_WS_TOKENS_FILE: "/env/tokens" },
        file: `tokens-file = "/file/tokens"`,
        get: (c) => c.access.tokensFile,
        values: ["/flag/tokens", "/env/tokens", "/file/tokens", undefined],
      },
      {
        flag: ["--allow-actor", "flag.*"],
        env: { CLU_WS_ALLOW_ACTOR: "env.*" },
        file: `allow-actor = ["file.*"]`,
        get: (c) => c.access.allowActors,
        values: [["flag.*"], ["env.*"], ["file.*"], []],
      },
      {
        flag: ["--deny-actor", "flag"],
        env: { CLU_WS_DENY_ACTOR: "env" },
        file: `deny-actor = ["file"]`,
        get: (c) => c.access.denyActors,
        values: [["flag"], ["env"], ["file"], []],
      },
      {
        flag: ["--allow-origin", "https://flag.org"],
        env: { CLU_WS_ALLOW_ORIGIN: "https://env.org" },
        file: `allow-origin = ["https://file.org"]`,
        get: (c) => c.access.allowOrigins,
        values: [["https://flag.org"], ["https://env.org"], ["https://file.org"], []],
      },
      {
        env: { CLU_WS_METRICS_TOKEN: "env-metrics" },
        file: `metrics-token = "file-metrics"`,
        get: (c) => c.access.metricsToken,
        values: [undefined, "env-metrics", "file-metrics", undefined],
      },
    ];
  for (const { flag, env, file, get, values } of cases) {
    const [flagValue, envValue, fileValue, defaultValue] = values;
    const label = file;
    if (flag) assert.deepEqual(get(withToml(file, flag, env)), flagValue, `flag: ${label}`);
    assert.deepEqual(get(withToml(file, [], env)), envValue, `env: ${label}`);
    assert.deepEqual(get(withToml(file)), fileValue, `file: ${label}`);
    assert.deepEqual(get(run([])), defaultValue, `default: ${label}`);
  }
});

Deno.test("config file: an empty environment variable does not hide the file's value", () => {
  assert.equal(withToml("port = 1003", [], { CLU_WS_PORT: "" }).port, 1003);
  assert.deepEqual(
    withToml(`allow-actor = ["lvm.*"]`, [], { CLU_WS_ALLOW_ACTOR: "" }).access.allowActors,
    ["lvm.*"],
  );
});

Deno.test("config file: the password in the file is used, and the environment beats it", () => {
  assert.equal(withToml(`password = "file-pw"`).broker.password, "file-pw");
  assert.equal(withToml(`password = "file-pw"`, [], { CLU_WS_PASSWORD: "env-pw" }).broker.password, "env-pw");
});

Deno.test("config file: CLU_WS_PASSWORD_FILE beats a password in the file", () => {
  const config = withToml(`password = "file-pw"`, [], { CLU_WS_PASSWORD_FILE: "/run/pw" }, {
    "/run/pw": "env-file-pw\n",
  });
  assert.equal(config.broker.password, "env-file-pw");
});

Deno.test("config file: CLU_WS_PASSWORD beats a password-file in the file, which is then not read", () => {
  const reads: string[] = [];
  const config = run(
    ["--config", TOML_PATH],
    { CLU_WS_PASSWORD: "env-pw" },
    { [TOML_PATH]: `password-file = "/run/pw"`, "/run/pw": "file-file-pw" },
    reads,
  );
  assert.equal(config.broker.password, "env-pw");
  assert.deepEqual(reads, [TOML_PATH]);
});

Deno.test("config file: --password-file beats a password in the file", () => {
  const config = withToml(`password = "file-pw"`, ["--password-file", "/flag/pw"], {}, {
    "/flag/pw": "flag-file-pw",
  });
  assert.equal(config.broker.password, "flag-file-pw");
});

Deno.test("config file: --password beats a password-file in the file, which is then not read; it warns", () => {
  const reads: string[] = [];
  const config = run(
    ["--config", TOML_PATH, "--password", "flag-pw"],
    {},
    { [TOML_PATH]: `password-file = "/run/pw"` },
    reads,
  );
  assert.equal(config.broker.password, "flag-pw");
  assert.deepEqual(reads, [TOML_PATH]);
  assert.equal(config.warnings.length, 1);
  assert.match(config.warnings[0], /--password on the command line/);
});

Deno.test("config file: within the file, password beats password-file (which is not read)", () => {
  const reads: string[] = [];
  const config = run(
    ["--config", TOML_PATH],
    {},
    { [TOML_PATH]: `password = "file-pw"\npassword-file = "/run/pw"` },
    reads,
  );
  assert.equal(config.broker.password, "file-pw");
  assert.deepEqual(reads, [TOML_PATH]);
});

Deno.test("config file: a password-file in the file is read through readTextFile; a missing one names the key", () => {
  assert.equal(
    withToml(`password-file = "/run/pw"`, [], {}, { "/run/pw": "first\nsecond\n" }).broker.password,
    "first",
  );
  const message = tomlError(`password-file = "/nope/pw"`);
  assert.match(
    message,
    /^\/etc\/clu-ws\/clu-ws\.toml: password-file: cannot read password file '\/nope\/pw'/,
  );
});

Deno.test("config file: an environment password beats the password of a url in the file", () => {
  // flags > env > file: the file's URL must not override what the environment says.
  const config = withToml(`url = "amqp://u:file-url-pw@mq.example/"`, [], { CLU_WS_PASSWORD: "env-pw" });
  assert.equal(config.broker.hostname, "mq.example");
  assert.equal(config.broker.password, "env-pw");
});

Deno.test("config file: a --rabbitmq-host flag beats the host of a url in the file", () => {
  const config = withToml(`url = "amqp://u@rabbit.prod:5672/"`, ["--rabbitmq-host", "localhost"]);
  assert.equal(config.broker.hostname, "localhost");
  assert.equal(config.broker.username, "u");
});

// ---------------------------------------------------------------- lists

Deno.test("config file: lists come from file arrays, comma-separated strings, env and repeated flags", () => {
  const expected = ["lvm.*", "lvmecp"];
  assert.deepEqual(withToml(`allow-actor = ["lvm.*", "lvmecp"]`).access.allowActors, expected);
  assert.deepEqual(withToml(`allow-actor = "lvm.*, lvmecp"`).access.allowActors, expected);
  assert.deepEqual(
    run(["--config", "/c.json"], {}, { "/c.json": `{"allow-actor": ["lvm.*", "lvmecp"]}` }).access
      .allowActors,
    expected,
  );
  assert.deepEqual(run([], { CLU_WS_ALLOW_ACTOR: "lvm.*,lvmecp" }).access.allowActors, expected);
  assert.deepEqual(run([], { CLU_WS_ALLOW_ACTOR: " lvm.* , lvmecp ," }).access.allowActors, expected);
  assert.deepEqual(run(["--allow-actor", "lvm.*", "--allow-actor", "lvmecp"]).access.allowActors, expected);
  assert.deepEqual(run(["--allow-actor", "lvm.*,lvmecp"]).access.allowActors, expected);
  assert.deepEqual(withToml(`allow-actor = []`).access.allowActors, []);
});

Deno.test("config file: a list from a higher layer replaces, not extends, a lower one", () => {
  const config = withToml(
    `deny-actor = ["file1", "file2"]\nallow-origin = ["https://file.org"]`,
    ["--deny-actor", "flag1"],
    { CLU_WS_DENY_ACTOR: "env1,env2", CLU_WS_ALLOW_ORIGIN: "https://env.org, https://*.env.org" },
  );
  assert.deepEqual(config.access.denyActors, ["flag1"]);
  assert.deepEqual(config.access.allowOrigins, ["https://env.org", "https://*.env.org"]);
});

Deno.test("config file: deny-actor and allow-origin take repeated flags too", () => {
  const config = run([
    "--deny-actor",
    "a",
    "--deny-actor",
    "b.*",
    "--allow-origin",
    "https://one.org",
    "--allow-origin",
    "http://localhost:3000",
  ]);
  assert.deepEqual(config.access.denyActors, ["a", "b.*"]);
  assert.deepEqual(config.access.allowOrigins, ["https://one.org", "http://localhost:3000"]);
});

Deno.test("config file: a table inside a list option is a ConfigError naming the file, not a TypeError", () => {
  // smol-toml tables have no prototype, so String(table) throws "Cannot convert object to primitive value".
  for (
    const text of [
      `deny-actor = [{ name = "lvmecp" }]`,
      `allow-origin = [{ url = "https://ops.example.org" }]`,
    ]
  ) {
    const message = tomlError(text);
    assert.ok(message.includes(TOML_PATH), message);
  }
  // In JSON the same table would silently become the glob "[object Object]" and deny nothing.
  const json = configError(["--config", JSON_PATH], {}, {
    [JSON_PATH]: `{"deny-actor": [{"name": "lvmecp"}]}`,
  });
  assert.ok(json.includes(JSON_PATH), json);
});

Deno.test("config file: a nested list inside a list option is a ConfigError, not silently flattened", () => {
  // [["a", "b"]] would otherwise become "a,b" and pass as two globs.
  const message = tomlError(`allow-actor = [["lvm.*", "lvmecp"]]`);
  assert.ok(message.includes(TOML_PATH), message);
  assert.ok(message.includes("allow-actor"), message);
});

// ---------------------------------------------------------------- booleans

Deno.test("config file: read-only accepts true/false/yes/no/1/0/on/off from the file", () => {
  const truthy = [`true`, `"true"`, `"yes"`, `"1"`, `1`, `"on"`, `"TRUE"`, `"Yes"`];
  const falsy = [`false`, `"false"`, `"no"`, `"0"`, `0`, `"off"`, `""`, `"No"`];
  for (const value of truthy) assert.equal(withToml(`read-only = ${value}`).access.readOnly, true, value);
  for (const value of falsy) assert.equal(withToml(`read-only = ${value}`).access.readOnly, false, value);
  assert.equal(
    run(["--config", "/c.json"], {}, { "/c.json": `{"read-only": true}` }).access.readOnly,
    true,
  );
  assert.equal(
    run(["--config", "/c.json"], {}, { "/c.json": `{"read-only": false}` }).access.readOnly,
    false,
  );
});

Deno.test("config file: read-only from the environment and the flag", () => {
  for (const value of ["true", "yes", "1", "on", " TRUE "]) {
    assert.equal(run([], { CLU_WS_READ_ONLY: value }).access.readOnly, true, value);
  }
  for (const value of ["false", "no", "0", "off"]) {
    assert.equal(run([], { CLU_WS_READ_ONLY: value }).access.readOnly, false, value);
  }
  assert.equal(run(["--read-only"]).access.readOnly, true);
  assert.equal(run([]).access.readOnly, false);
});

Deno.test("config file: read-only layers: env false beats file true; the flag beats env false", () => {
  assert.equal(withToml(`read-only = true`, [], { CLU_WS_READ_ONLY: "false" }).access.readOnly, false);
  assert.equal(withToml(`read-only = false`, [], { CLU_WS_READ_ONLY: "yes" }).access.readOnly, true);
  assert.equal(
    withToml(`read-only = false`, ["--read-only"], { CLU_WS_READ_ONLY: "no" }).access.readOnly,
    true,
  );
});

Deno.test("config file: a bad boolean is a ConfigError naming where it came from", () => {
  assert.equal(
    tomlError(`read-only = "maybe"`),
    `${TOML_PATH}: read-only: 'maybe' is not true or false`,
  );
  assert.equal(tomlError(`read-only = 2`), `${TOML_PATH}: read-only: '2' is not true or false`);
  assert.equal(
    configError([], { CLU_WS_READ_ONLY: "enabled" }),
    "CLU_WS_READ_ONLY: 'enabled' is not true or false",
  );
  assert.match(configError(["--read-only=yes"]), /read-only/);
});

// ---------------------------------------------------------------- origins

Deno.test("config file: good origin patterns are kept, lower-cased", () => {
  const good = [
    ["https://ops.example.org", "https://ops.example.org"],
    ["https://OPS.Example.ORG", "https://ops.example.org"],
    ["http://localhost:3000", "http://localhost:3000"],
    ["https://*.example.org", "https://*.example.org"],
    ["https://*.Example.org:8443", "https://*.example.org:8443"],
    ["http://10.0.0.1:8080", "http://10.0.0.1:8080"],
  ];
  for (const [pattern, kept] of good) {
    assert.deepEqual(run(["--allow-origin", pattern]).access.allowOrigins, [kept], pattern);
  }
});

Deno.test("config file: an origin with an upper-case scheme is accepted and lower-cased", () => {
  // The pattern is lower-cased after the check, but the check only accepts a lower-case scheme.
  assert.deepEqual(run(["--allow-origin", "HTTPS://OPS.Example.ORG"]).access.allowOrigins, [
    "https://ops.example.org",
  ]);
});

Deno.test("config file: bad origin patterns are rejected with a clear message naming the source", () => {
  const bad = [
    "ops.example.org",
    "https://ops.example.org/",
    "https://ops.example.org/path",
    "ftp://ops.example.org",
    "wss://ops.example.org",
    "https://*example.org",
    "https://ops.*.org",
    "https://*",
    "*",
    "https://user@ops.example.org",
    "https://ops.example.org:port",
  ];
  for (const pattern of bad) {
    assert.equal(
      configError(["--allow-origin", pattern]),
      `--allow-origin: '${pattern}' is not an origin; use e.g. https://ops.example.org or https://*.example.org`,
      pattern,
    );
  }
  assert.match(
    configError([], { CLU_WS_ALLOW_ORIGIN: "https://ok.org,ops.example.org" }),
    /^CLU_WS_ALLOW_ORIGIN: 'ops\.example\.org' is not an origin/,
  );
  assert.match(
    tomlError(`allow-origin = ["https://ok.org", "https://ok.org/"]`),
    /^\/etc\/clu-ws\/clu-ws\.toml: allow-origin: 'https:\/\/ok\.org\/' is not an origin/,
  );
});

// ---------------------------------------------------------------- tokens

const TOKEN_HEX = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"; // sha256("abc")

Deno.test("config file: [[tokens]] tables in a TOML config file become access.tokensText and parse", async () => {
  const config = withToml(`port = 9000

[[tokens]]
name = "ops"
role = "command"
actors = ["lvm.*"]
sha256 = "${TOKEN_HEX}"

[[tokens]]
name = "viewer"
role = "watch"
sha256 = "${"0".repeat(64)}"
`);
  assert.equal(config.port, 9000);
  const tokensText = config.access.tokensText;
  assert.ok(tokensText);
  assert.equal(tokensText.source, `${TOML_PATH}: tokens`);
  const set = await parseTokens(tokensText.text, tokensText.source);
  assert.deepEqual(set.entries.map((e) => [e.name, e.role, e.actors && [...e.actors.patterns]]), [
    ["ops", "command", ["lvm.*"]],
    ["viewer", "watch", undefined],
  ]);

  // And the gateway admits with it.
  const access = new Access(config.access);
  await access.load();
  assert.equal(access.usesTokens, true);
  const admitted = await access.admit(new Request("http://gw/?token=abc"), "peer");
  assert.ok(!(admitted instanceof Response));
  assert.equal(access.tokenOf(admitted.grant)?.name, "ops");
});

Deno.test("config file: a tokens list in a JSON config file becomes access.tokensText", async () => {
  const config = run(["--config", JSON_PATH], {}, {
    [JSON_PATH]: JSON.stringify({ tokens: [{ name: "ops", role: "command", sha256: TOKEN_HEX }] }),
  });
  assert.equal(config.access.tokensText?.source, `${JSON_PATH}: tokens`);
  const set = await parseTokens(config.access.tokensText!.text, config.access.tokensText!.source);
  assert.deepEqual(set.entries.map((e) => e.name), ["ops"]);
});

Deno.test("config file: tokens as a JSON string in the file is passed through", async () => {
  const doc = JSON.stringify([{ name: "ops", role: "watch", sha256: TOKEN_HEX }]);
  const config = withToml(`tokens = '${doc}'`);
  assert.deepEqual(config.access.tokensText, { text: doc, source: `${TOML_PATH}: tokens` });
  assert.equal((await parseTokens(doc, "x")).entries[0].role, "watch");
});

Deno.test("config file: a bad token in the config file is a TokensError naming the file's tokens", async () => {
  const config = withToml(`[[tokens]]\nname = "ops"\nrole = "root"\nsha256 = "${TOKEN_HEX}"\n`);
  await assert.rejects(
    parseTokens(config.access.tokensText!.text, config.access.tokensText!.source),
    (err: unknown) => {
      assert.ok(err instanceof TokensError);
      assert.match(err.message, /^\/etc\/clu-ws\/clu-ws\.toml: tokens: token #1 \(ops\): 'role'/);
      return true;
    },
  );
});

Deno.test("config file: CLU_WS_TOKENS beats tokens in the file; there is no --tokens flag", () => {
  const env = `[{"name":"env","role":"watch","sha256":"${TOKEN_HEX}"}]`;
  const config = withToml(`[[tokens]]\nname = "file"\nrole = "watch"\nsha256 = "${TOKEN_HEX}"\n`, [], {
    CLU_WS_TOKENS: env,
  });
  assert.deepEqual(config.access.tokensText, { text: env, source: "CLU_WS_TOKENS" });
  assert.match(configError(["--tokens", env]), /^unknown option --tokens; run with --help/);
});

Deno.test("config file: metrics-token comes from the file or the environment, never a flag", () => {
  assert.equal(withToml(`metrics-token = "m-file"`).access.metricsToken, "m-file");
  assert.equal(run([], { CLU_WS_METRICS_TOKEN: "m-env" }).access.metricsToken, "m-env");
  assert.match(configError(["--metrics-token", "m"]), /^unknown option --metrics-token; run with --help/);
});

// ---------------------------------------------------------------- TLS

Deno.test("config file: --tls-cert and --tls-key are read through readTextFile", () => {
  const reads: string[] = [];
  const config = run(
    ["--tls-cert", "/etc/clu-ws/cert.pem", "--tls-key", "/etc/clu-ws/key.pem"],
    {},
    TLS_FILES,
    reads,
  );
  assert.deepEqual(config.tls, { cert: CERT_PEM, key: KEY_PEM });
  assert.deepEqual(reads, ["/etc/clu-ws/cert.pem", "/etc/clu-ws/key.pem"]);
});

Deno.test("config file: TLS from the environment, the file, and mixed layers", () => {
  assert.deepEqual(
    run([], { CLU_WS_TLS_CERT: "/etc/clu-ws/cert.pem", CLU_WS_TLS_KEY: "/etc/clu-ws/key.pem" }, TLS_FILES)
      .tls,
    { cert: CERT_PEM, key: KEY_PEM },
  );
  assert.deepEqual(
    withToml(`tls-cert = "/etc/clu-ws/cert.pem"\ntls-key = "/etc/clu-ws/key.pem"`, [], {}, TLS_FILES).tls,
    { cert: CERT_PEM, key: KEY_PEM },
  );
  assert.deepEqual(
    withToml(`tls-cert = "/etc/clu-ws/cert.pem"`, [], { CLU_WS_TLS_KEY: "/etc/clu-ws/key.pem" }, TLS_FILES)
      .tls,
    { cert: CERT_PEM, key: KEY_PEM },
  );
  // A flag overrides the file's certificate path.
  const other = "-----BEGIN CERTIFICATE-----\nOTHER\n-----END CERTIFICATE-----\n";
  assert.deepEqual(
    withToml(
      `tls-cert = "/etc/clu-ws/cert.pem"\ntls-key = "/etc/clu-ws/key.pem"`,
      ["--tls-cert", "/new/cert.pem"],
      {},
      { ...TLS_FILES, "/new/cert.pem": other },
    ).tls,
    { cert: other, key: KEY_PEM },
  );
});

Deno.test("config file: no TLS options, no TLS, and no file read", () => {
  const reads: string[] = [];
  assert.equal(run([], {}, {}, reads).tls, undefined);
  assert.deepEqual(reads, []);
});

Deno.test("config file: a certificate without a key (or a key without a certificate) is a ConfigError", () => {
  assert.equal(
    configError(["--tls-cert", "/etc/clu-ws/cert.pem"], {}, TLS_FILES),
    "--tls-cert needs its pair: give both --tls-cert and --tls-key",
  );
  assert.equal(
    configError([], { CLU_WS_TLS_KEY: "/etc/clu-ws/key.pem" }, TLS_FILES),
    "CLU_WS_TLS_KEY needs its pair: give both --tls-cert and --tls-key",
  );
  assert.equal(
    tomlError(`tls-cert = "/etc/clu-ws/cert.pem"`, [], {}, TLS_FILES),
    `${TOML_PATH}: tls-cert needs its pair: give both --tls-cert and --tls-key`,
  );
});

Deno.test("config file: an unreadable certificate or key is a ConfigError naming it", () => {
  assert.match(
    configError(["--tls-cert", "/missing/cert.pem", "--tls-key", "/etc/clu-ws/key.pem"], {}, TLS_FILES),
    /^--tls-cert: cannot read TLS certificate '\/missing\/cert\.pem' \(.*No such file/,
  );
  assert.match(
    configError(["--tls-cert", "/etc/clu-ws/cert.pem", "--tls-key", "/missing/key.pem"], {}, TLS_FILES),
    /^--tls-key: cannot read TLS key '\/missing\/key\.pem' \(/,
  );
  assert.match(
    tomlError(`tls-cert = "/etc/clu-ws/cert.pem"\ntls-key = "/missing/key.pem"`, [], {}, TLS_FILES),
    /^\/etc\/clu-ws\/clu-ws\.toml: tls-key: cannot read TLS key '\/missing\/key\.pem'/,
  );
});

Deno.test("config file: the shipped deploy/clu-ws.toml.example is a valid configuration", () => {
  const path = new URL("../deploy/clu-ws.toml.example", import.meta.url).pathname;
  const request = parseCli(["--config", path], {});
  assert.equal(request.kind, "run");
  if (request.kind === "run") assert.equal(request.config.brokers.length, 2);
});
