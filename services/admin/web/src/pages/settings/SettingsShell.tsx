/** The settings page's tabs (from routes.tsx: every route with `settingsTab` the user may open). */
import type { ReactNode } from "react";
import { NavLink } from "react-router";
import { useAuth } from "@/auth";
import { PageHeader } from "@/components/ui";
import { useI18n } from "@/i18n";
import { allowed, routes } from "@/routes";

export default function SettingsShell({ children }: { children: ReactNode }) {
  const { t } = useI18n();
  const { user } = useAuth();
  const tabs = routes.filter((route) => route.settingsTab && allowed(route.access, user?.role ?? null));
  return (
    <>
      <PageHeader title={t("nav.settings")} />
      <nav className="tabs" aria-label={t("nav.settings")}>
        {tabs.map((route) => (
          <NavLink key={route.path} to={route.path} className={({ isActive }) => `tab${isActive ? " active" : ""}`}>
            {t(route.settingsTab!)}
          </NavLink>
        ))}
      </nav>
      {children}
    </>
  );
}
