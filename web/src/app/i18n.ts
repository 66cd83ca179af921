/**
 * French and English. The language comes from the browser (`navigator.languages`) unless the
 * user picked one with the switch, which is remembered on this browser only.
 */

import { DecryptError, GoneError, IntegrityError, SignatureError, TrustError } from "../crypto/errors.js";

export type Lang = "en" | "fr";

const STORE = "pli:lang";

const en = {
  appName: "pli",
  tagline: "End-to-end encrypted file exchange",
  skip: "Skip to content",
  switchTo: "Français",
  switchLabel: "Afficher en français",
  navInbox: "Inbox",
  navOutbox: "Sent",
  navSend: "Send files",
  navKeys: "Keys",
  navSecurity: "Security",
  securityTitle: "Sign-in security",
  passkeysTitle: "Passkeys",
  passkeysIntro: "A passkey is kept by this device, a security key or your password manager, for this site only: a look-alike site cannot use it. With one, signing in asks for it after your password.",
  passkeysUnsupported: "This browser cannot make passkeys.",
  noPasskeys: "No passkey yet.",
  addPasskey: "Add a passkey",
  passkeyName: "Name",
  passkeyNameHint: "To tell your passkeys apart, such as the device that keeps it.",
  passkeyDefaultName: "My passkey",
  passkeyNameNeeded: "Give the passkey a name.",
  passkeyAdded: "Passkey “{name}” added.",
  passkeyRemoved: "Passkey “{name}” removed.",
  passkeyDismissed: "No passkey was used: the request was dismissed, timed out, or this device has no passkey for this account.",
  passkeyNeeded: "Use your passkey, or enter a code from your authenticator app or a recovery code.",
  usePasskey: "Use my passkey",
  removeWithCode: "Removing a passkey",
  removeWithCodeHint: "Removing asks for one of your passkeys; or fill in a code from your authenticator app or a recovery code here first.",
  authenticatorApp: "Authenticator app",
  recoveryCodesLeft: "Recovery codes left",
  recoveryCodesOnce: "Your recovery codes, shown this once. Keep them somewhere safe: each signs you in once if you lose your passkeys.",
  on: "on",
  off: "off",
  added: "Added",
  lastUsed: "Last used",
  actions: "Actions",
  navSignOut: "Sign out",
  signInTitle: "Sign in",
  email: "Email",
  password: "Password",
  otp: "Code from your authenticator app",
  otpHint: "Six digits, or one of your recovery codes.",
  signIn: "Sign in",
  signingIn: "Signing in…",
  badLogin: "The email or the password is wrong.",
  badCode: "The email, the password or the code is wrong (a code works once).",
  sessionEnded: "Your session ended: sign in again to go on.",
  otpNeeded: "Enter the code from your authenticator app.",
  tooMany: "Too many attempts. Wait a few minutes, then try again.",
  unlockTitle: "Unlock your keys",
  unlockIntro:
    "Your private keys are stored on the server encrypted under your passphrase, which the server never sees. Type it to decrypt them in this browser.",
  passphrase: "Passphrase",
  unlock: "Unlock",
  unlocking: "Unlocking… (this takes a few seconds)",
  badPassphrase: "This passphrase does not unlock your keys.",
  noEscrowTitle: "Set up your keys",
  noEscrowCli:
    "This account already has keys on another device, which this browser cannot unlock. You can create keys for this browser below: one of your devices will then have to approve them (`pli devices approve`) before anyone encrypts to them. Or run `pli keys init --escrow` on a new device to keep a copy this browser can unlock.",
  pendingTitle: "Approve this browser",
  pendingIntro:
    "These keys wait for one of your devices to approve them: until then, no one encrypts files to them. On a device that has your keys, run the command below and check that it shows this fingerprint.",
  pendingDevice: "This browser's device",
  pendingCheck: "I approved it",
  stillPending: "Not approved yet: run the command on one of your devices, then try again.",
  createIntro:
    "pli encrypts files in your browser to your correspondents' keys. Create your keys: they are encrypted under a passphrase only you know before they are stored on the server.",
  newPassphrase: "New passphrase",
  repeatPassphrase: "Repeat the passphrase",
  passphraseHint:
    "At least 16 characters, different from your password. Nobody can recover it for you: without it, files sent to you cannot be opened.",
  createKeys: "Create my keys",
  creating: "Creating your keys…",
  passphraseMismatch: "The two passphrases differ.",
  passphraseShort: "Use at least 16 characters.",
  passphraseIsPassword: "Use a passphrase different from your password.",
  inboxTitle: "Inbox",
  outboxTitle: "Sent",
  empty: "Nothing here yet.",
  loading: "Loading…",
  from: "From",
  to: "To",
  files: "Files",
  expires: "Expires",
  state: "State",
  open: "Open",
  more: "Show more",
  verified: "Signature verified",
  unverifiedKey: "key not yet verified with them",
  problem: "Problem",
  sendTitle: "Send files",
  recipients: "Recipients",
  recipientsHint: "Email addresses, separated by commas.",
  chooseFiles: "Choose files",
  dropHere: "or drop them here",
  expiry: "Expires in",
  message: "Message (encrypted)",
  send: "Encrypt and send",
  cancel: "Cancel",
  sending: "Encrypting and sending…",
  sent: "Sent. Only the recipients can decrypt it.",
  noFiles: "Choose at least one file.",
  noRecipients: "Name at least one recipient.",
  remove: "Remove",
  day1: "1 day",
  day7: "7 days",
  day30: "30 days",
  transferTitle: "Transfer",
  sender: "Sender",
  fingerprint: "Fingerprint",
  download: "Download",
  downloading: "Decrypting…",
  downloaded: "Decrypted and checked.",
  keysTitle: "Keys",
  yourKey: "Your key",
  yourFingerprint: "Your fingerprint",
  correspondents: "Correspondents' keys",
  verifyHow:
    "To verify a key, call the person and compare the fingerprint you see here with the one they see on their own keys page (or with `pli keys show`). If they match, nobody has slipped another key in between.",
  noCorrespondents: "You have not exchanged files with anyone yet.",
  device: "Device",
  keysChanged: "The keys of {email} changed since you last used them. Check their new fingerprint with them before you trust it.",
  trustNew: "Trust the new keys",
  firstUse: "First exchange with {email}: their key is now remembered, not yet verified.",
  speed: "{done} of {total} · {speed}/s · {left} left",
  cancelled: "Cancelled.",
  networkLost: "Connection lost; retrying…",
  failed: "It did not work: {reason}",
  errIntegrity: "the file or its description is not what the sender signed; nothing was kept.",
  errSignature: "the sender's signature does not verify; nothing was kept.",
  errTrust: "the sender's key is not the one this browser knows for them.",
  errDecrypt: "the file could not be decrypted: it is damaged, or not for this key.",
  errGone: "this transfer has expired or was withdrawn.",
  errNetwork: "the server cannot be reached: check the connection and try again.",
  errServer: "the server refused ({detail}).",
  notFound: "This page does not exist.",
  gone: "This transfer has expired or was revoked.",
  back: "Back to the inbox",
  language: "Language",
  linkTitle: "A share link",
  requestTitle: "A file request",
  landingCli: "Open it with the pli command line:",
  linkCommand: "pli link get 'URL'",
  requestCommand: "pli request send 'URL' FILE...",
  landingUrl: "where URL is the whole address you were given, including the part after #.",
  fragmentNote:
    "The part after # is the key: your browser does not send it to this server, and neither does pli. It never leaves your machine.",
  navLinks: "Links",
  navRequests: "Requests",
  linksTitle: "Share links",
  linksIntro: "A link lets someone without an account download files. The key is in the link itself, after #: the server never sees it.",
  newLink: "New link",
  maxDownloads: "Downloads allowed",
  unlimited: "No limit",
  linkPassphrase: "Passphrase (optional)",
  linkPassphraseHint: "If you set one, give it to the recipient another way, by phone for instance.",
  createLink: "Encrypt and create the link",
  linkReady: "The link is ready. Copy it now: it cannot be shown again.",
  copy: "Copy",
  copied: "Copied.",
  yourLinks: "Your links",
  downloadsUsed: "{used} downloads, {left} left",
  downloadsUsedNoLimit: "{used} downloads",
  revoke: "Revoke",
  revoked: "Revoked.",
  linkOpenTitle: "Files shared with you",
  linkOpenIntro: "These files are encrypted. Your browser decrypts them with the key in the address, which the server never receives.",
  linkNeedsPassphrase: "This link is protected by a passphrase. The sender should have given it to you another way.",
  openLink: "Open",
  opening: "Opening…",
  signedBy: "Signed by {email}",
  claimNote: "Not verified: compare this fingerprint with the sender's, by phone for instance.",
  linkBroken: "This link is incomplete or was altered: ask its sender for it again.",
  wrongLinkPassphrase: "Wrong passphrase for this link (or the link was altered).",
  linkGone: "This link does not exist or is no longer available.",
  requestsTitle: "File requests",
  requestsIntro: "A request lets someone without an account send you files, encrypted in their browser to a key only your devices hold.",
  newRequest: "New request",
  requestTitleLabel: "What you are asking for (encrypted)",
  maxFiles: "Files allowed",
  createRequest: "Create the request",
  requestReady: "The request is ready. Send this address to the person who should send you files:",
  yourRequests: "Your requests",
  closeRequest: "Close",
  closed: "Closed.",
  filesUsed: "{used} of {max} files received",
  answerTitle: "Send files",
  answerIntro: "Your files are encrypted in this browser before they are sent; only the person who asked can open them.",
  requestedBy: "Asked by {email}",
  yourName: "Your name (shown to them as you type it)",
  answerSend: "Encrypt and send",
  answerSent: "Sent. The person who asked will find your files in their inbox.",
  requestBroken: "This request link is incomplete or was altered: ask for it again.",
  requestGone: "This request does not exist or is no longer open.",
  left: "Still accepted: {files} files, {bytes}",
  answerFrom: "Answer to your request, from someone who says they are “{name}”",
  pinnedBefore: "Keys you had for them:",
  offeredNow: "Keys the server gives now:",
  comparedWith: "I compared the new fingerprints with {email} (by phone, for instance), and they match",
  confirmFirst: "Compare the fingerprints with them first, then tick the box.",
  trusted: "The new keys are trusted. Try again.",
  signInPassword: "Your sign-in password",
  signInPasswordHint: "To check that the passphrase is different from it. It is checked by the server as at sign-in; the passphrase never leaves this page.",
  expiryMismatch: "The server set a later expiry than the one you chose: nothing was sent.",
  requester: "Asked by",
  navigation: "Main menu",
  signedInAs: "Signed in as {email}",
  resumeTitle: "Interrupted send",
  resumeIntro: "An upload was interrupted: select the same files again to resume.",
  resumeStarted: "begun {date}",
  resumeChoose: "The same files",
  resumeSend: "Resume sending",
  resumeDiscard: "Discard this send",
  resumeDiscarded: "The interrupted send was discarded.",
  resumeNoFiles: "Choose the same files again first.",
  resumeSameFiles: "These are not the files of the interrupted send. Choose: {names}.",
  resumeAfresh: "The interrupted transfer could not go on (it had ended, or keys changed): the files were sent again as a new transfer.",
  resumeChanged: "{name} is not the file that was interrupted: it was sent again from its start, under a new key.",
  resumeLost: "This browser can no longer resume this send: it was discarded. Send the files again.",
  resumeElsewhere: "This send is going on in another tab or window.",
};

export type Key = keyof typeof en;

const fr: Record<Key, string> = {
  appName: "pli",
  tagline: "Échange de fichiers chiffré de bout en bout",
  skip: "Aller au contenu",
  switchTo: "English",
  switchLabel: "Show in English",
  navInbox: "Reçus",
  navOutbox: "Envoyés",
  navSend: "Envoyer",
  navKeys: "Clés",
  navSecurity: "Sécurité",
  securityTitle: "Sécurité de la connexion",
  passkeysTitle: "Clés d’accès",
  passkeysIntro: "Une clé d’accès est gardée par cet appareil, une clé de sécurité ou votre gestionnaire de mots de passe, pour ce site seulement : un site imitant celui-ci ne peut pas s’en servir. Avec une clé d’accès, la connexion la demande après votre mot de passe.",
  passkeysUnsupported: "Ce navigateur ne sait pas créer de clé d’accès.",
  noPasskeys: "Aucune clé d’accès pour l’instant.",
  addPasskey: "Ajouter une clé d’accès",
  passkeyName: "Nom",
  passkeyNameHint: "Pour distinguer vos clés d’accès, par exemple l’appareil qui la garde.",
  passkeyDefaultName: "Ma clé d’accès",
  passkeyNameNeeded: "Donnez un nom à la clé d’accès.",
  passkeyAdded: "Clé d’accès « {name} » ajoutée.",
  passkeyRemoved: "Clé d’accès « {name} » supprimée.",
  passkeyDismissed: "Aucune clé d’accès n’a été utilisée : la demande a été refusée ou a expiré, ou cet appareil n’a pas de clé d’accès pour ce compte.",
  passkeyNeeded: "Utilisez votre clé d’accès, ou saisissez un code de votre application d’authentification ou un code de secours.",
  usePasskey: "Utiliser ma clé d’accès",
  removeWithCode: "Supprimer une clé d’accès",
  removeWithCodeHint: "La suppression demande l’une de vos clés d’accès ; ou bien saisissez d’abord ici un code de votre application d’authentification ou un code de secours.",
  authenticatorApp: "Application d’authentification",
  recoveryCodesLeft: "Codes de secours restants",
  recoveryCodesOnce: "Vos codes de secours, affichés cette seule fois. Gardez-les en lieu sûr : chacun vous connecte une fois si vous perdez vos clés d’accès.",
  on: "activée",
  off: "désactivée",
  added: "Ajoutée le",
  lastUsed: "Dernière utilisation",
  actions: "Actions",
  navSignOut: "Se déconnecter",
  signInTitle: "Connexion",
  email: "Adresse électronique",
  password: "Mot de passe",
  otp: "Code de votre application d’authentification",
  otpHint: "Six chiffres, ou l’un de vos codes de secours.",
  signIn: "Se connecter",
  signingIn: "Connexion…",
  badLogin: "L’adresse ou le mot de passe est faux.",
  badCode: "L’adresse, le mot de passe ou le code est faux (un code ne sert qu’une fois).",
  sessionEnded: "Votre session a pris fin : reconnectez-vous pour continuer.",
  otpNeeded: "Saisissez le code de votre application d’authentification.",
  tooMany: "Trop de tentatives. Attendez quelques minutes puis réessayez.",
  unlockTitle: "Déverrouiller vos clés",
  unlockIntro:
    "Vos clés privées sont gardées sur le serveur, chiffrées sous votre phrase secrète, que le serveur ne voit jamais. Saisissez-la pour les déchiffrer dans ce navigateur.",
  passphrase: "Phrase secrète",
  unlock: "Déverrouiller",
  unlocking: "Déverrouillage… (quelques secondes)",
  badPassphrase: "Cette phrase secrète n’ouvre pas vos clés.",
  noEscrowTitle: "Créer vos clés",
  noEscrowCli:
    "Ce compte a déjà des clés sur un autre appareil, que ce navigateur ne peut pas ouvrir. Vous pouvez créer ci-dessous des clés pour ce navigateur : l’un de vos appareils devra ensuite les approuver (`pli devices approve`) avant que quiconque chiffre pour elles. Ou lancez `pli keys init --escrow` sur un nouvel appareil pour en garder une copie que ce navigateur peut ouvrir.",
  pendingTitle: "Approuvez ce navigateur",
  pendingIntro:
    "Ces clés attendent qu’un de vos appareils les approuve : d’ici là, personne ne chiffre de fichiers pour elles. Sur un appareil qui a vos clés, lancez la commande ci-dessous et vérifiez qu’elle affiche cette empreinte.",
  pendingDevice: "L’appareil de ce navigateur",
  pendingCheck: "Je l’ai approuvé",
  stillPending: "Pas encore approuvé : lancez la commande sur l’un de vos appareils, puis réessayez.",
  createIntro:
    "pli chiffre les fichiers dans votre navigateur pour les clés de vos correspondants. Créez vos clés : elles sont chiffrées sous une phrase secrète connue de vous seul avant d’être gardées sur le serveur.",
  newPassphrase: "Nouvelle phrase secrète",
  repeatPassphrase: "Répétez la phrase secrète",
  passphraseHint:
    "Au moins 16 caractères, différente de votre mot de passe. Personne ne peut la retrouver pour vous : sans elle, les fichiers qu’on vous envoie ne peuvent pas être ouverts.",
  createKeys: "Créer mes clés",
  creating: "Création de vos clés…",
  passphraseMismatch: "Les deux phrases secrètes diffèrent.",
  passphraseShort: "Utilisez au moins 16 caractères.",
  passphraseIsPassword: "Choisissez une phrase secrète différente de votre mot de passe.",
  inboxTitle: "Reçus",
  outboxTitle: "Envoyés",
  empty: "Rien pour l’instant.",
  loading: "Chargement…",
  from: "De",
  to: "À",
  files: "Fichiers",
  expires: "Expire",
  state: "État",
  open: "Ouvrir",
  more: "Afficher la suite",
  verified: "Signature vérifiée",
  unverifiedKey: "clé pas encore vérifiée avec cette personne",
  problem: "Problème",
  sendTitle: "Envoyer des fichiers",
  recipients: "Destinataires",
  recipientsHint: "Adresses électroniques, séparées par des virgules.",
  chooseFiles: "Choisir des fichiers",
  dropHere: "ou déposez-les ici",
  expiry: "Expire dans",
  message: "Message (chiffré)",
  send: "Chiffrer et envoyer",
  cancel: "Annuler",
  sending: "Chiffrement et envoi…",
  sent: "Envoyé. Seuls les destinataires peuvent le déchiffrer.",
  noFiles: "Choisissez au moins un fichier.",
  noRecipients: "Indiquez au moins un destinataire.",
  remove: "Retirer",
  day1: "1 jour",
  day7: "7 jours",
  day30: "30 jours",
  transferTitle: "Envoi",
  sender: "Expéditeur",
  fingerprint: "Empreinte",
  download: "Télécharger",
  downloading: "Déchiffrement…",
  downloaded: "Déchiffré et vérifié.",
  keysTitle: "Clés",
  yourKey: "Votre clé",
  yourFingerprint: "Votre empreinte",
  correspondents: "Clés de vos correspondants",
  verifyHow:
    "Pour vérifier une clé, appelez la personne et comparez l’empreinte affichée ici avec celle qu’elle voit sur sa propre page Clés (ou avec `pli keys show`). Si elles sont identiques, personne n’a glissé une autre clé entre vous.",
  noCorrespondents: "Vous n’avez encore échangé de fichiers avec personne.",
  device: "Appareil",
  keysChanged: "Les clés de {email} ont changé depuis votre dernier échange. Vérifiez leur nouvelle empreinte avec cette personne avant de leur faire confiance.",
  trustNew: "Faire confiance aux nouvelles clés",
  firstUse: "Premier échange avec {email} : sa clé est désormais mémorisée, pas encore vérifiée.",
  speed: "{done} sur {total} · {speed}/s · reste {left}",
  cancelled: "Annulé.",
  networkLost: "Connexion perdue ; nouvelle tentative…",
  failed: "Échec : {reason}",
  errIntegrity: "le fichier ou sa description ne correspond pas à ce que l’expéditeur a signé ; rien n’a été gardé.",
  errSignature: "la signature de l’expéditeur ne se vérifie pas ; rien n’a été gardé.",
  errTrust: "la clé de l’expéditeur n’est pas celle que ce navigateur connaît pour lui.",
  errDecrypt: "le fichier n’a pas pu être déchiffré : il est abîmé, ou n’est pas destiné à cette clé.",
  errGone: "ce transfert a expiré ou a été retiré.",
  errNetwork: "le serveur est injoignable : vérifiez la connexion et réessayez.",
  errServer: "le serveur a refusé ({detail}).",
  notFound: "Cette page n’existe pas.",
  gone: "Cet envoi a expiré ou a été révoqué.",
  back: "Retour aux fichiers reçus",
  language: "Langue",
  linkTitle: "Un lien de partage",
  requestTitle: "Une demande de fichiers",
  landingCli: "Ouvrez-le avec la ligne de commande pli :",
  linkCommand: "pli link get 'URL'",
  requestCommand: "pli request send 'URL' FICHIER...",
  landingUrl: "où URL est l’adresse complète que vous avez reçue, y compris la partie après #.",
  fragmentNote:
    "La partie après # est la clé : votre navigateur ne l’envoie pas à ce serveur, et pli non plus. Elle ne quitte jamais votre machine.",
  navLinks: "Liens",
  navRequests: "Demandes",
  linksTitle: "Liens de partage",
  linksIntro: "Un lien permet à quelqu’un sans compte de télécharger des fichiers. La clé est dans le lien lui-même, après # : le serveur ne la voit jamais.",
  newLink: "Nouveau lien",
  maxDownloads: "Téléchargements autorisés",
  unlimited: "Sans limite",
  linkPassphrase: "Phrase secrète (facultative)",
  linkPassphraseHint: "Si vous en mettez une, transmettez-la au destinataire par un autre moyen, par téléphone par exemple.",
  createLink: "Chiffrer et créer le lien",
  linkReady: "Le lien est prêt. Copiez-le maintenant : il ne pourra plus être affiché.",
  copy: "Copier",
  copied: "Copié.",
  yourLinks: "Vos liens",
  downloadsUsed: "{used} téléchargements, reste {left}",
  downloadsUsedNoLimit: "{used} téléchargements",
  revoke: "Révoquer",
  revoked: "Révoqué.",
  linkOpenTitle: "Fichiers partagés avec vous",
  linkOpenIntro: "Ces fichiers sont chiffrés. Votre navigateur les déchiffre avec la clé contenue dans l’adresse, que le serveur ne reçoit jamais.",
  linkNeedsPassphrase: "Ce lien est protégé par une phrase secrète. L’expéditeur a dû vous la donner par un autre moyen.",
  openLink: "Ouvrir",
  opening: "Ouverture…",
  signedBy: "Signé par {email}",
  claimNote: "Non vérifié : comparez cette empreinte avec celle de l’expéditeur, par téléphone par exemple.",
  linkBroken: "Ce lien est incomplet ou a été modifié : redemandez-le à son expéditeur.",
  wrongLinkPassphrase: "Mauvaise phrase secrète pour ce lien (ou le lien a été modifié).",
  linkGone: "Ce lien n’existe pas ou n’est plus disponible.",
  requestsTitle: "Demandes de fichiers",
  requestsIntro: "Une demande permet à quelqu’un sans compte de vous envoyer des fichiers, chiffrés dans son navigateur pour une clé que seuls vos appareils détiennent.",
  newRequest: "Nouvelle demande",
  requestTitleLabel: "Ce que vous demandez (chiffré)",
  maxFiles: "Fichiers autorisés",
  createRequest: "Créer la demande",
  requestReady: "La demande est prête. Envoyez cette adresse à la personne qui doit vous transmettre des fichiers :",
  yourRequests: "Vos demandes",
  closeRequest: "Fermer",
  closed: "Fermée.",
  filesUsed: "{used} fichiers reçus sur {max}",
  answerTitle: "Envoyer des fichiers",
  answerIntro: "Vos fichiers sont chiffrés dans ce navigateur avant d’être envoyés ; seule la personne qui les demande peut les ouvrir.",
  requestedBy: "Demandé par {email}",
  yourName: "Votre nom (affiché tel que vous le saisissez)",
  answerSend: "Chiffrer et envoyer",
  answerSent: "Envoyé. La personne qui vous les a demandés les trouvera dans ses fichiers reçus.",
  requestBroken: "Ce lien de demande est incomplet ou a été modifié : redemandez-le.",
  requestGone: "Cette demande n’existe pas ou n’est plus ouverte.",
  left: "Encore acceptés : {files} fichiers, {bytes}",
  answerFrom: "Réponse à votre demande, de quelqu’un qui dit s’appeler « {name} »",
  pinnedBefore: "Clés que vous aviez pour cette personne :",
  offeredNow: "Clés que le serveur donne maintenant :",
  comparedWith: "J’ai comparé les nouvelles empreintes avec {email} (par téléphone par exemple), et elles sont identiques",
  confirmFirst: "Comparez d’abord les empreintes avec cette personne, puis cochez la case.",
  trusted: "Les nouvelles clés sont acceptées. Réessayez.",
  signInPassword: "Votre mot de passe de connexion",
  signInPasswordHint: "Pour vérifier que la phrase secrète en est différente. Le serveur le vérifie comme à la connexion ; la phrase secrète ne quitte jamais cette page.",
  expiryMismatch: "Le serveur a fixé une expiration plus tardive que celle choisie : rien n’a été envoyé.",
  requester: "Demandé par",
  navigation: "Menu principal",
  signedInAs: "Connecté en tant que {email}",
  resumeTitle: "Envoi interrompu",
  resumeIntro: "Un envoi a été interrompu : choisissez de nouveau les mêmes fichiers pour le reprendre.",
  resumeStarted: "commencé le {date}",
  resumeChoose: "Les mêmes fichiers",
  resumeSend: "Reprendre l’envoi",
  resumeDiscard: "Abandonner cet envoi",
  resumeDiscarded: "L’envoi interrompu a été abandonné.",
  resumeNoFiles: "Choisissez d’abord de nouveau les mêmes fichiers.",
  resumeSameFiles: "Ce ne sont pas les fichiers de l’envoi interrompu. Choisissez : {names}.",
  resumeAfresh: "Le transfert interrompu ne pouvait pas reprendre (il avait pris fin, ou des clés ont changé) : les fichiers ont été renvoyés dans un nouveau transfert.",
  resumeChanged: "{name} n’est pas le fichier interrompu : il a été renvoyé depuis le début, sous une nouvelle clé.",
  resumeLost: "Ce navigateur ne peut plus reprendre cet envoi : il a été abandonné. Envoyez de nouveau les fichiers.",
  resumeElsewhere: "Cet envoi se poursuit dans un autre onglet ou une autre fenêtre.",
};

const dictionaries: Record<Lang, Record<Key, string>> = { en, fr };

export function chosenLang(): Lang {
  const stored = localStorage.getItem(STORE);
  if (stored === "en" || stored === "fr") return stored;
  for (const tag of navigator.languages ?? [navigator.language]) {
    const base = tag.toLowerCase().split("-")[0];
    if (base === "fr" || base === "en") return base;
  }
  return "en";
}

let current: Lang = "en";

export function setLang(lang: Lang, remember: boolean): void {
  current = lang;
  document.documentElement.lang = lang;
  if (remember) localStorage.setItem(STORE, lang);
}

export function lang(): Lang {
  return current;
}

/** The text for `key` in the current language, with `{name}` placeholders filled in. */
export function t(key: Key, values: Record<string, string> = {}): string {
  return dictionaries[current][key].replace(/\{(\w+)\}/g, (_, name: string) => values[name] ?? "");
}

/** A byte count as people read it, in the current language's number format. */
export function formatBytes(n: number): string {
  const units = current === "fr" ? ["o", "Kio", "Mio", "Gio", "Tio"] : ["B", "KiB", "MiB", "GiB", "TiB"];
  let value = n;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  const digits = unit === 0 ? 0 : value < 10 ? 1 : 0;
  return `${value.toLocaleString(current, { maximumFractionDigits: digits })} ${units[unit]}`;
}

export function formatDate(iso: string): string {
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? iso : date.toLocaleString(current, { dateStyle: "medium", timeStyle: "short" });
}

export function formatSeconds(s: number): string {
  if (!Number.isFinite(s)) return "…";
  const m = Math.floor(s / 60);
  return m > 0 ? `${m} min ${Math.round(s % 60)} s` : `${Math.round(s)} s`;
}

/** The checks' errors, said in French (their messages, like the server's, are English). */
const FRENCH: [abstract new (...args: never[]) => Error, Key][] = [
  [IntegrityError, "errIntegrity"],
  [SignatureError, "errSignature"],
  [TrustError, "errTrust"],
  [DecryptError, "errDecrypt"],
  [GoneError, "errGone"],
];

/**
 * What went wrong, as the error says it (the app's own errors are sentences a user can act on).
 * In French, the checks' errors are said in French, and the server's refusals are introduced in
 * French with its English detail kept.
 */
export function reason(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  if (current !== "fr" || !(error instanceof Error)) return message;
  const known = FRENCH.find(([kind]) => error instanceof kind);
  if (known) return t(known[1]);
  if (error instanceof TypeError) return t("errNetwork");
  if ("status" in error && typeof error.status === "number") return t("errServer", { detail: message });
  return message;
}

/** "It did not work: …" in the current language. */
export function failure(error: unknown): string {
  return t("failed", { reason: reason(error) });
}
