/** Types for `cluster-key-slot` (ioredis's own dependency, which ships none): a key's hash slot. */
declare module 'cluster-key-slot' {
  export default function calculateSlot(key: string | Buffer): number;
}
