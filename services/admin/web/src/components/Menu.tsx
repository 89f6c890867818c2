/** A small dropdown of actions: `<Menu label="…" items={[{ label, onClick }]} />`. */
import { useEffect, useRef, useState, type ReactNode } from "react";
import styles from "./Menu.module.css";

export interface MenuItem {
  label: ReactNode;
  onClick: () => void;
  testId?: string;
}

export function Menu({ label, items, testId }: { label: ReactNode; items: MenuItem[]; testId?: string }) {
  const [open, setOpen] = useState(false);
  const ref = useRef<HTMLDivElement>(null);
  useEffect(() => {
    if (!open) return;
    const close = (event: MouseEvent) => {
      if (ref.current && !ref.current.contains(event.target as Node)) setOpen(false);
    };
    document.addEventListener("mousedown", close);
    return () => document.removeEventListener("mousedown", close);
  }, [open]);
  return (
    <div className={styles.menu} ref={ref}>
      <button
        type="button"
        className="btn btn-small"
        aria-haspopup="menu"
        aria-expanded={open}
        onClick={() => setOpen((value) => !value)}
        data-testid={testId}
      >
        {label} ▾
      </button>
      {open ? (
        <div className={styles.list} role="menu">
          {items.map((item, index) => (
            <button
              key={index}
              type="button"
              role="menuitem"
              className={styles.item}
              data-testid={item.testId}
              onClick={() => {
                setOpen(false);
                item.onClick();
              }}
            >
              {item.label}
            </button>
          ))}
        </div>
      ) : null}
    </div>
  );
}
