/** Route guard: nobody → /login (coming back here after), too low a role → "no permission". */
import type { ReactNode } from "react";
import { Navigate, useLocation } from "react-router";
import type { Role } from "@/api/types";
import { Forbidden } from "@/components/Forbidden";
import { Spinner } from "@/components/ui";
import { useAuth } from "./index";

export function RequireRole({ min, children }: { min: Role; children: ReactNode }) {
  const { ready, user } = useAuth();
  const location = useLocation();
  if (!ready) return <Spinner />;
  if (user === null) {
    const from = location.pathname + location.search;
    return <Navigate to={`/login?from=${encodeURIComponent(from)}`} replace />;
  }
  if (user.role < min) return <Forbidden />;
  return <>{children}</>;
}
