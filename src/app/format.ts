// Numbers as the app shows them.

/** Bytes in MB (10^6): two decimals under 10 MB, none above. */
export const mb = (n: number) => `${(n / 1e6).toFixed(n < 1e7 ? 2 : 0)} MB`;

/** A parameter count: 134.5M, 1.2B. */
export const paramCount = (n: number) => (n >= 1e9 ? `${(n / 1e9).toFixed(1)}B` : n >= 1e6 ? `${(n / 1e6).toFixed(1)}M` : `${Math.round(n / 1e3)}K`);
