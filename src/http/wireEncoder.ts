import { Either, identity, ParseResult, Predicate, Schema, SchemaAST as AST } from "effect"

type Encode = (value: unknown) => unknown

/**
 * `Schema.encodeSync(schema)` for values whose type the compiler has checked, at an eighth of
 * its cost. The status cache encodes each read with it: a user's four statuses (two connected)
 * take 45 µs through Schema and 6 µs here (the hand-written mapping this replaced: 2.4 µs; the
 * JSON text costs about 5 µs more either way), where a miss costs the machine about 580 µs of CPU
 * in bench:status (two cores over the rate in bench/RESULTS.md): Schema's encoder would have
 * cost about 7 % of the misses. Schema checks the Type side of every renaming struct before
 * renaming it, so an account is checked again for each struct around it; this walks the same
 * AST once and does what it says: wire names in the wire order, arrays, NullOr, records, and
 * the leaf transformations' own `encode` (a Date's ISO string). Whatever else it meets is
 * handed to Schema itself. test/http/wireEncoder.test.ts holds it to Schema's output for
 * every answer of the API.
 */
export const wireEncoder = <A, I>(schema: Schema.Schema<A, I>): (value: A) => unknown => compile(schema.ast)

const compile = (ast: AST.AST): Encode => {
  switch (ast._tag) {
    case "StringKeyword":
    case "NumberKeyword":
    case "BooleanKeyword":
    case "UnknownKeyword":
    case "Literal":
      return identity
    case "Refinement":
      return compile(ast.from)
    case "TypeLiteral":
      return struct(ast, new Map())
    case "TupleType":
      return array(ast)
    case "Union":
      return union(ast)
    case "Transformation":
      return transformation(ast)
    default:
      return bySchema(ast)
  }
}

const bySchema = (ast: AST.AST): Encode => ParseResult.encodeUnknownSync(Schema.make(ast))

const transformation = (ast: AST.Transformation): Encode => {
  const t = ast.transformation
  if (
    t._tag === "TypeLiteralTransformation" && ast.from._tag === "TypeLiteral" &&
    t.propertySignatureTransformations.every((p) => p.encode === identity)
  ) {
    // Schema.fromKey: only the names differ.
    return struct(ast.from, new Map(t.propertySignatureTransformations.map((p) => [p.from, p.to])))
  }
  if (t._tag === "FinalTransformation" && AST.typeAST(ast.to) === ast.to) {
    // A leaf (a Date to its ISO string): its own encode, then its encoded side. The Type side
    // holds no transformation, so encoding it would only check it.
    const from = compile(ast.from)
    const fallback = bySchema(ast)
    return (input) => {
      const result = t.encode(input, AST.defaultParseOption, ast, input)
      return Either.isEither(result) && Either.isRight(result) ? from(result.right) : fallback(input)
    }
  }
  return bySchema(ast)
}

/** The wire names in the wire order, each read from its Type-side name (`names`, when renamed). */
const struct = (ast: AST.TypeLiteral, names: ReadonlyMap<PropertyKey, PropertyKey>): Encode => {
  const [index, ...moreIndexes] = ast.indexSignatures
  if (ast.propertySignatures.some((p) => p.isOptional) || moreIndexes.length > 0) return bySchema(ast)
  if (index !== undefined) {
    if (ast.propertySignatures.length > 0 || index.parameter._tag !== "StringKeyword") return bySchema(ast)
    const value = compile(index.type)
    const fallback = bySchema(ast)
    return (input) => {
      if (!Predicate.isRecord(input)) return fallback(input)
      const out: Record<string, unknown> = {}
      // A "__proto__" key (JSON.parse makes it an own property) is not an answer's: Schema's
      // encoding of the answers drops it, and assigning it would set the prototype instead.
      for (const key of Object.keys(input)) if (key !== "__proto__") out[key] = value(input[key])
      return out
    }
  }
  const fields = ast.propertySignatures.map((p) => ({ wire: p.name, name: names.get(p.name) ?? p.name, encode: compile(p.type) }))
  const fallback = bySchema(ast)
  return (input) => {
    if (!Predicate.isRecord(input)) return fallback(input)
    const out: Record<PropertyKey, unknown> = {}
    for (const field of fields) out[field.wire] = field.encode(input[field.name])
    return out
  }
}

const array = (ast: AST.TupleType): Encode => {
  const [rest, ...more] = ast.rest
  if (ast.elements.length > 0 || rest === undefined || more.length > 0) return bySchema(ast)
  const item = compile(rest.type)
  const fallback = bySchema(ast)
  return (input) => (Array.isArray(input) ? input.map((element) => item(element)) : fallback(input))
}

/** The first member the value is a Type of, as Schema's encoder picks it. */
const union = (ast: AST.Union): Encode => {
  const members = ast.types.map((member) => ({ is: guard(member), encode: compile(member) }))
  const fallback = bySchema(ast)
  return (input) => {
    for (const member of members) if (member.is(input)) return member.encode(input)
    return fallback(input)
  }
}

const guard = (ast: AST.AST): (value: unknown) => boolean => {
  if (ast._tag === "Literal") {
    const literal = ast.literal
    return (value) => value === literal
  }
  return ParseResult.is(Schema.make(AST.typeAST(ast)))
}
