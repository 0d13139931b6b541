/** Fixed instants for storage tests, which pass time explicitly. */
export const T0 = new Date("2026-01-01T00:00:00.000Z")
export const at = (seconds: number) => new Date(T0.getTime() + seconds * 1000)
