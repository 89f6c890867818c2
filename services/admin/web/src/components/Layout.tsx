/**
 * The frame of every page: header (logo, name, language, theme, account), the navigation built
 * from routes.tsx by role (a drawer on a phone), the page, the footer. A root still on the
 * default password sees only the forced password change until it is changed.
 */
import { useEffect, useState } from "react";
import { Link, NavLink, Outlet, useLocation, useNavigate } from "react-router";
import { ROLE } from "@/api/types";
import { useAuth } from "@/auth";
import { LANGS, useI18n } from "@/i18n";
import ForcePasswordChange from "@/pages/auth/ForcePasswordChange";
import { allowed, routes } from "@/routes";
import { useTheme } from "@/theme";
import { ErrorBoundary } from "./ErrorBoundary";
import { sanitizeHtml } from "./Markdown";
import styles from "./Layout.module.css";

function Navigation({ onNavigate }: { onNavigate: () => void }) {
  const { t } = useI18n();
  const { user, status } = useAuth();
  const role = user?.role ?? null;
  const entries = routes.filter(
    (route) => route.nav && allowed(route.access, role) && (route.nav.show?.(status) ?? true),
  );
  return (
    <nav className={styles.nav} aria-label={t("nav.label")}>
      {entries.map((route) => (
        <NavLink
          key={route.path}
          to={route.path}
          end={route.path === "/"}
          className={({ isActive }) => `${styles.navLink}${isActive ? ` ${styles.active}` : ""}`}
          onClick={onNavigate}
          data-nav={route.path}
        >
          {t(route.nav!.label)}
        </NavLink>
      ))}
      {role === null ? (
        <NavLink to="/login" className={styles.navLink} onClick={onNavigate} data-nav="/login">
          {t("nav.login")}
        </NavLink>
      ) : null}
    </nav>
  );
}

function roleName(role: number, t: ReturnType<typeof useI18n>["t"]): string {
  if (role >= ROLE.ROOT) return t("role.root");
  if (role >= ROLE.ADMIN) return t("role.admin");
  return t("role.common");
}

export function Layout() {
  const { t, lang, setLang } = useI18n();
  const { theme, toggle } = useTheme();
  const { user, status, logout, isRoot } = useAuth();
  const [drawer, setDrawer] = useState(false);
  const location = useLocation();
  const navigate = useNavigate();
  useEffect(() => setDrawer(false), [location.pathname]);

  const systemName = status?.system_name || "One API";
  const mustChangePassword = Boolean(isRoot && status?.root_password_is_default);
  const nextLang = LANGS[(LANGS.indexOf(lang) + 1) % LANGS.length];

  return (
    <div className={styles.shell}>
      <header className={styles.header}>
        <button
          className={styles.burger}
          onClick={() => setDrawer((open) => !open)}
          aria-label={t("nav.menu")}
          aria-expanded={drawer}
          data-testid="menu-toggle"
        >
          ☰
        </button>
        <Link to="/" className={styles.brand}>
          <img src={status?.logo || "/favicon.svg"} alt="" className={styles.logo} />
          <span>{systemName}</span>
        </Link>
        <div className={styles.tools}>
          <button
            className={styles.tool}
            onClick={() => setLang(nextLang)}
            title={t("common.language")}
            data-testid="lang-toggle"
          >
            {lang === "zh" ? "EN" : "中文"}
          </button>
          <button
            className={styles.tool}
            onClick={toggle}
            title={t("common.theme")}
            aria-label={theme === "dark" ? t("common.lightTheme") : t("common.darkTheme")}
            data-testid="theme-toggle"
          >
            {theme === "dark" ? "☀" : "☾"}
          </button>
          {user ? (
            <>
              <span className={styles.user} data-testid="current-user">
                {user.display_name || user.username}
                <small className={styles.role}>{roleName(user.role, t)}</small>
              </span>
              <button
                className={styles.tool}
                onClick={async () => {
                  await logout();
                  navigate("/login");
                }}
                data-testid="logout"
              >
                {t("nav.logout")}
              </button>
            </>
          ) : null}
        </div>
      </header>
      <div className={styles.body}>
        <aside className={`${styles.sidebar}${drawer ? ` ${styles.open}` : ""}`}>
          <Navigation onNavigate={() => setDrawer(false)} />
        </aside>
        {drawer ? <div className={styles.scrim} onClick={() => setDrawer(false)} /> : null}
        <main className={styles.main}>
          {mustChangePassword ? (
            <ForcePasswordChange />
          ) : (
            <ErrorBoundary key={location.pathname}>
              <Outlet />
            </ErrorBoundary>
          )}
          <footer className={styles.footer}>
            {status?.footer_html ? (
              <div dangerouslySetInnerHTML={{ __html: sanitizeHtml(status.footer_html) }} />
            ) : (
              <span>
                {systemName} {status?.version ? `v${status.version}` : ""}
              </span>
            )}
          </footer>
        </main>
      </div>
    </div>
  );
}
