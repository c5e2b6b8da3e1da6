export { main, mainHelp, runCli } from './main';
