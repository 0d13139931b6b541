import { Config, ConfigError, Duration, Either, Option, type Redacted } from "effect"

const invalid = (rule: string) => ConfigError.InvalidData([], rule)

const refine = <A, B>(config: Config.Config<A>, check: (a: A) => Either.Either<B, string>): Config.Config<B> =>
  Config.mapOrFail(config, (a) => Either.mapLeft(check(a), invalid))

/**
 * The variable `name`, read by `build` from an unnamed config. Effect names a failure by
 * the nesting around it, so every rule lives inside `Config.nested` to be reported as
 * "NAME: rule" whatever combinators (default, option, redacted) come between.
 */
export const variable = <A>(name: string, build: (raw: Config.Config<string>) => Config.Config<A>): Config.Config<A> =>
  Config.nested(build(Config.string()), name)

export const secret = <A>(
  name: string,
  build: (raw: Config.Config<Redacted.Redacted>) => Config.Config<A>
): Config.Config<A> => Config.nested(build(Config.redacted()), name)

const units: Record<string, (n: number) => Duration.Duration> = {
  ms: Duration.millis,
  s: Duration.seconds,
  m: Duration.minutes,
  h: Duration.hours,
  d: Duration.days
}

/** "30" (seconds), "500ms", "30s", "5m", "1h", "7d", or Effect's "30 seconds". */
export const parseDuration = (raw: string): Option.Option<Duration.Duration> => {
  const text = raw.trim()
  const short = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)?$/.exec(text)
  if (short !== null) {
    const unit = units[short[2] ?? "s"]
    return unit === undefined ? Option.none() : Option.some(unit(Number(short[1])))
  }
  return Duration.decodeUnknown(text)
}

/** A parser of one variable's text: the value, or the rule it breaks. */
export type Parser<A> = (raw: string) => Either.Either<A, string>

/** The variable `name` read with `parse`; failures are reported as "NAME: rule". */
export const checked = <A>(name: string, parse: Parser<A>): Config.Config<A> => variable(name, (c) => refine(c, parse))

/** A duration within [min, max]: huge values overflow timers and dates and only fail later, far from their cause. */
export const durationWithin = (min?: Duration.DurationInput, max?: Duration.DurationInput): Parser<Duration.Duration> => (raw) => {
  const parsed = parseDuration(raw)
  if (Option.isNone(parsed)) return Either.left("must be a duration such as 30s, 5m, 1h or a number of seconds")
  if (min !== undefined && Duration.lessThan(parsed.value, Duration.decode(min))) {
    return Either.left(`must be at least ${Duration.format(Duration.decode(min))}`)
  }
  if (max !== undefined && Duration.greaterThan(parsed.value, Duration.decode(max))) {
    return Either.left(`must be at most ${Duration.format(Duration.decode(max))}`)
  }
  return Either.right(parsed.value)
}

export const durationAtLeast = (min?: Duration.DurationInput): Parser<Duration.Duration> => durationWithin(min)

export const integerIn = (min: number, max: number): Parser<number> => (raw) => {
  const text = raw.trim()
  const n = Number(text)
  return /^-?\d+$/.test(text) && n >= min && n <= max ? Either.right(n) : Either.left(`must be an integer from ${min} to ${max}`)
}

export const numberIn = (min: number, max: number): Parser<number> => (raw) => {
  const n = Number(raw.trim())
  return raw.trim() !== "" && Number.isFinite(n) && n >= min && n <= max ? Either.right(n) : Either.left(`must be a number from ${min} to ${max}`)
}

export const parseBoolean: Parser<boolean> = (raw) => {
  const v = raw.trim().toLowerCase()
  if (["1", "true", "yes", "on"].includes(v)) return Either.right(true)
  if (["0", "false", "no", "off"].includes(v)) return Either.right(false)
  return Either.left("must be true or false")
}

export const duration = (
  name: string,
  fallback: Duration.DurationInput,
  options?: { readonly min?: Duration.DurationInput; readonly max?: Duration.DurationInput }
) => checked(name, durationWithin(options?.min, options?.max)).pipe(Config.withDefault(Duration.decode(fallback)))

export const integer = (name: string, fallback: number, range: { readonly min: number; readonly max: number }) =>
  checked(name, integerIn(range.min, range.max)).pipe(Config.withDefault(fallback))

export const boolean = (name: string, fallback: boolean) => checked(name, parseBoolean).pipe(Config.withDefault(fallback))

const splitList = (raw: string) => raw.split(",").map((s) => s.trim()).filter((s) => s.length > 0)

/** Comma separated, blanks dropped; missing means empty. */
export const list = (name: string) =>
  variable(name, (c) => c.pipe(Config.map(splitList), Config.withDefault<ReadonlyArray<string>>([])))

export const parseAbsoluteHttpUrl = (raw: string): Either.Either<URL, string> => {
  try {
    const url = new URL(raw.trim())
    return url.protocol === "http:" || url.protocol === "https:"
      ? Either.right(url)
      : Either.left("must be an absolute http(s) URL")
  } catch {
    return Either.left("must be an absolute http(s) URL")
  }
}

/** An origin such as https://app.example.com (no path, query or fragment). */
export const parseOrigin = (raw: string): Either.Either<string, string> =>
  Either.flatMap(parseAbsoluteHttpUrl(raw), (url) =>
    (url.pathname === "/" || url.pathname === "") && url.search === "" && url.hash === "" &&
      url.username === "" && url.password === ""
      ? Either.right(url.origin)
      : Either.left(`"${raw}" must be an origin: scheme, host and optional port, nothing else`))

export const origins = (name: string) =>
  variable(name, (c) =>
    refine(c, (raw) => Either.all(splitList(raw).map(parseOrigin))).pipe(Config.withDefault<ReadonlyArray<string>>([])))

export const httpUrl = (name: string) => variable(name, (c) => refine(c, parseAbsoluteHttpUrl))

export { refine }
