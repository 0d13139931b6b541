import { Array as Arr, ConfigError, Data } from "effect"

/** The configuration could not be used; one line per problem, each naming its variable. */
export class ConfigInvalid extends Data.TaggedError("ConfigInvalid")<{ readonly problems: ReadonlyArray<string> }> {
  override get message() {
    return this.problems.join("\n")
  }
}

/**
 * Turns a ConfigError tree into "VARIABLE: rule" lines. An `Or` comes from a variable read
 * with a fallback (an alias, a global default of a per-platform setting): when one side only
 * misses its variable, the other side's failure is the problem; when both miss, the first
 * name is the one to set.
 */
export const describeConfigError = (error: ConfigError.ConfigError): ReadonlyArray<string> => {
  switch (error._op) {
    case "Or": {
      const leftMissing = ConfigError.isMissingDataOnly(error.left)
      const rightMissing = ConfigError.isMissingDataOnly(error.right)
      if (leftMissing) return describeConfigError(rightMissing ? error.left : error.right)
      if (rightMissing) return describeConfigError(error.left)
      return Arr.dedupe([...describeConfigError(error.left), ...describeConfigError(error.right)])
    }
    case "And":
      return Arr.dedupe([...describeConfigError(error.left), ...describeConfigError(error.right)])
    case "MissingData":
      return [`${error.path.join(".")}: is required`]
    default:
      return [error.path.length === 0 ? error.message : `${error.path.join(".")}: ${error.message}`]
  }
}

export const invalid = (problem: string) => new ConfigInvalid({ problems: [problem] })
