/**
 * A dialog: `<Modal open={…} title={…} onClose={…} footer={<Button …/>}>…</Modal>`.
 * `useConfirm()` gives `confirm(text) → Promise<boolean>` for "are you sure?" questions.
 */
import { useCallback, useEffect, useRef, useState, type ReactNode } from "react";
import { useI18n } from "@/i18n";
import { Button } from "./ui";
import styles from "./Modal.module.css";

export function Modal({
  open,
  title,
  onClose,
  footer,
  children,
  wide = false,
}: {
  open: boolean;
  title: ReactNode;
  onClose: () => void;
  footer?: ReactNode;
  children: ReactNode;
  wide?: boolean;
}) {
  const { t } = useI18n();
  const ref = useRef<HTMLDialogElement>(null);
  useEffect(() => {
    const dialog = ref.current;
    if (!dialog) return;
    if (open && !dialog.open) dialog.showModal();
    if (!open && dialog.open) dialog.close();
  }, [open]);
  return (
    <dialog
      ref={ref}
      className={`${styles.dialog}${wide ? ` ${styles.wide}` : ""}`}
      onCancel={(event) => {
        event.preventDefault();
        onClose();
      }}
    >
      {open ? (
        <div className={styles.body}>
          <header className={styles.header}>
            <h2>{title}</h2>
            <button className={styles.close} onClick={onClose} aria-label={t("common.close")}>
              ×
            </button>
          </header>
          <div className={styles.content}>{children}</div>
          {footer ? <footer className={styles.footer}>{footer}</footer> : null}
        </div>
      ) : null}
    </dialog>
  );
}

export function useConfirm(): [(text: ReactNode) => Promise<boolean>, ReactNode] {
  const { t } = useI18n();
  const [question, setQuestion] = useState<{ text: ReactNode; resolve: (ok: boolean) => void } | null>(null);
  const confirm = useCallback(
    (text: ReactNode) => new Promise<boolean>((resolve) => setQuestion({ text, resolve })),
    [],
  );
  const answer = (ok: boolean) => {
    question?.resolve(ok);
    setQuestion(null);
  };
  const element = (
    <Modal
      open={question !== null}
      title={t("common.confirm")}
      onClose={() => answer(false)}
      footer={
        <>
          <Button onClick={() => answer(false)}>{t("common.cancel")}</Button>
          <Button variant="danger" onClick={() => answer(true)} data-testid="confirm-yes">
            {t("common.confirm")}
          </Button>
        </>
      }
    >
      <p>{question?.text}</p>
    </Modal>
  );
  return [confirm, element];
}
