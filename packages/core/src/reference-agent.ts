/** Capabilities the reference agent (`devart agent`) has built-in handlers for. */
export const builtInCapabilities = ['echo', 'shell'] as const;
export type BuiltInCapability = (typeof builtInCapabilities)[number];
