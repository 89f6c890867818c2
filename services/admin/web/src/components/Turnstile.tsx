/** The Turnstile widget; renders nothing (and loads nothing) unless the operator enabled it. */
import { useEffect, useRef } from "react";
import { useAuth } from "@/auth";
import { loadTurnstile } from "@/lib/turnstile";

export function useTurnstileEnabled(): boolean {
  const { status } = useAuth();
  return Boolean(status?.turnstile_check && status.turnstile_site_key);
}

export function Turnstile({ onToken }: { onToken: (token: string) => void }) {
  const { status } = useAuth();
  const enabled = useTurnstileEnabled();
  const ref = useRef<HTMLDivElement>(null);
  const siteKey = status?.turnstile_site_key ?? "";
  useEffect(() => {
    if (!enabled || !ref.current) return;
    let id: string | null = null;
    let cancelled = false;
    const element = ref.current;
    loadTurnstile()
      .then((turnstile) => {
        if (!cancelled) id = turnstile.render(element, { sitekey: siteKey, callback: onToken });
      })
      .catch(() => undefined);
    return () => {
      cancelled = true;
      if (id !== null) window.turnstile?.remove(id);
    };
  }, [enabled, siteKey, onToken]);
  return enabled ? <div ref={ref} className="turnstile" /> : null;
}
