/**
 * Offer a checked file to the user. The name is the sender's, as signed: only its last path
 * component is kept, without control characters, so it cannot choose a folder; the browser
 * applies its own rules on top.
 */

export function safeName(name: string): string {
  const last = name.split(/[\\/]/).pop() ?? "";
  const clean = last.replace(/[\u0000-\u001f\u007f-\u009f\u200e\u200f\u202a-\u202e\u2066-\u2069]/g, "").trim();
  return clean && clean !== "." && clean !== ".." ? clean : "file";
}

export function saveBlob(blob: Blob, name: string): void {
  const url = URL.createObjectURL(blob);
  const a = document.createElement("a");
  a.href = url;
  a.download = safeName(name);
  a.hidden = true;
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}
