// SHA-256 as lowercase hex through Web Crypto (browsers in a secure context, Node ≥ 19).
export async function sha256Hex(data: BufferSource | string, subtle: SubtleCrypto = crypto.subtle): Promise<string> {
  const bytes = typeof data === 'string' ? new TextEncoder().encode(data) : data;
  return [...new Uint8Array(await subtle.digest('SHA-256', bytes))].map((b) => b.toString(16).padStart(2, '0')).join('');
}
