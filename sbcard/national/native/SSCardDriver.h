/*
 * SSCardDriver.h - the national social security card reader interface (社保卡读卡通用接口),
 * as implemented by sbcard's libSSCardDriver.so (Linux; no __stdcall there).
 *
 * Prototypes as the public headers and code give them (人社信息函〔2016〕38号; e.g.
 * gdgly/SI_3rdCard code/SSCARD/SSCARD/SSCARD/SSCARDCtrl.h and SSCARDCtrl.cpp). Written for
 * sbcard; see docs/national-interface.md for every function, output format and return code.
 *
 * Strings in and out are GBK, NUL-terminated. The caller allocates every output buffer; the
 * library never writes more than SSCARD_MAX_OUTPUT bytes (NUL included) into one, and a
 * result that would not fit is replaced by an error (-42) whose message fits. Allocate
 * 1024 bytes (the national convention) or SSCARD_MAX_OUTPUT.
 *
 * Return: 0 success; a negative code otherwise, pOutInfo then holds the Chinese message.
 * Thread-safe: calls on one reader are serialised, different readers run in parallel.
 */
#ifndef SSCARD_DRIVER_H
#define SSCARD_DRIVER_H

#ifdef __cplusplus
extern "C" {
#endif

#define SSCARD_MAX_OUTPUT 1024   /* bytes a function writes into one buffer, at most */

long iReadCardBas(int iType, char* pOutInfo);
long iReadCardBas_HSM_Step1(int iType, char* pOutInfo);
long iReadCardBas_HSM_Step2(char* pKey, char* pOutInfo);
long iVerifyPIN(int iType, char* pOutInfo);
long iChangePIN(int iType, char* pOutInfo);
long iReloadPIN(int iType, char* pCardInfo, char* pOutInfo);
long iReloadPIN_HSM_Step1(int iType, char* pCardInfo, char* pOutInfo);
long iReloadPIN_HSM_Step2(char* pKey, char* pOutInfo);
long iReloadPIN_HSM_Step3(char* pKey, char* pOutInfo);
long iUnblockPIN(int iType, char* pCardInfo, char* pOutInfo);
long iUnblockPIN_HSM_Step1(int iType, char* pCardInfo, char* pOutInfo);
long iUnblockPIN_HSM_Step2(char* pKey, char* pOutInfo);
long iUnblockPIN_HSM_Step3(char* pKey, char* pOutInfo);
long iReadCard(int iType, int iAuthType, char* pCardInfo, char* pFileAddr, char* pOutInfo);
long iReadCard_HSM_Step1(int iType, char* pCardInfo, char* pFileAddr, char* pOutInfo);
long iReadCard_HSM_Step2(char* pKey, char* pOutInfo);
long iWriteCard(int iType, char* pCardInfo, char* pFileAddr, char* pWriteData, char* pOutInfo);
long iWriteCard_HSM_Step1(int iType, char* pCardInfo, char* pFileAddr, char* pOutInfo);
long iWriteCard_HSM_Step2(char* pKey, char* pWriteData, char* pOutInfo);
long iGetCardType(unsigned char* pCardType, char* pOutInfo);
long iGetReaderInfo(char* pReaderSN, char* pPsamTermNo);
long iGetDeviceInfo(char* pOutInfo);
long iDoDebit(int iType, char* pCardInfo, char* pPayInfo, char* pOutInfo);
long iDoDebit_HSM_Step1(int iType, char* pCardInfo, char* pPayInfo, char* pOutInfo);
long iDoDebit_HSM_Step2(char* pKey, char* pOutInfo);
long iReadDebitRecord(int iType, char* pOutInfo);
long PKI_SignData(char* pUserPin, char* pInData, int iType, char* pOutInfo);
long PKI_VerifySign(char* pUserPin, char* pCert, char* pClearText, char* pSignature, int iType, char* pOutInfo);

#ifdef __cplusplus
}
#endif

#endif /* SSCARD_DRIVER_H */
