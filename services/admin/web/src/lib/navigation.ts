/** Where to go after login: `?from=` when it is a path of this site, else the dashboard. */
export function safeFrom(from: string | null): string {
  return from && from.startsWith("/") && !from.startsWith("//") ? from : "/dashboard";
}
